package mapping

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// The decodeTOML methods of this file let raw structs hold the compiled
// enumerations directly.

// failureAction is an Action for a failed chain ([chains.NAME.on_failure]).
type failureAction Action

func (a *failureAction) decodeTOML(v any) error {
	return decodeAction(v, (*Action)(a), TempFail, Accept, Reject, Quarantine)
}

// oversizeAction is an Action for a message above max_message_size.
type oversizeAction Action

func (a *oversizeAction) decodeTOML(v any) error {
	return decodeAction(v, (*Action)(a), Reject, TempFail, SkipAdaptation)
}

// decodeAction decodes the name of one of the allowed actions.
func decodeAction(v any, a *Action, allowed ...Action) error {
	names := make([]string, len(allowed))
	for i, x := range allowed {
		names[i] = x.String()
	}
	i, err := decodeEnum(v, names)
	if err == nil {
		*a = allowed[i]
	}
	return err
}

func (s *Strategy) decodeTOML(v any) error {
	i, err := decodeEnum(v, []string{"failover", "round-robin"})
	*s = Strategy(i)
	return err
}

func (p *Profile) decodeTOML(v any) error {
	i, err := decodeEnum(v, []string{"receiver", "sender"})
	*p = Profile(i)
	return err
}

// rawPart is a part as written in a route, checked while decoding.
type rawPart ocpsmtp.Part

func (p *rawPart) decodeTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return &typeError{"a part name", v}
	}
	switch up := ocpsmtp.Part(strings.ToUpper(s)); {
	case slices.Contains(routeParts[:], ocpsmtp.Part(s)):
		*p = rawPart(s)
		return nil
	case slices.Contains(routeParts[:], up):
		return fmt.Errorf("unknown part %q (parts are upper case: %q)", s, string(up))
	case up == "DATA" || up == "RSET" || up == "QUIT":
		return fmt.Errorf("%s is not a part: the draft forbids DATA, RSET and QUIT (the message is RAWDATA, or ALLHEADERS or SINGLEHEADERS with BODY or SECTIONS)", up)
	case up == "VRFY" || up == "EXPN":
		return fmt.Errorf("%s never reaches a milter: the MTA answers it itself", up)
	}
	names := make([]string, len(routeParts))
	for i, p := range routeParts {
		names[i] = string(p)
	}
	return fmt.Errorf("unknown part %q (want one of %s)", s, strings.Join(names, ", "))
}

// logLevel is a slog.Level written as "debug", "info", "warn" or "error".
type logLevel slog.Level

var logLevels = [...]slog.Level{slog.LevelDebug, slog.LevelInfo, slog.LevelWarn, slog.LevelError}

func (l *logLevel) decodeTOML(v any) error {
	i, err := decodeEnum(v, []string{"debug", "info", "warn", "error"})
	*l = logLevel(logLevels[i])
	return err
}

// logFormat is "text" or "json".
type logFormat string

func (f *logFormat) decodeTOML(v any) error {
	names := []string{"text", "json"}
	i, err := decodeEnum(v, names)
	if err == nil {
		*f = logFormat(names[i])
	}
	return err
}
