package builtin

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/callout"
)

// spamdReply is spamd's answer to a SYMBOLS, REPORT or HEADERS request
// (SPAMC/1.5; spamd's protocol description in spamd/PROTOCOL).
type spamdReply struct {
	// Spam is spamd's own verdict from its required_score, which this
	// service does not use: the thresholds are ours.
	Spam             bool
	Score, Threshold float64
	// Body is the symbol list (SYMBOLS), the report (REPORT) or the
	// rewritten header section (HEADERS).
	Body []byte
}

// errSpamd is the class of spamd's own error answers (EX_* codes).
var errSpamd = errors.New("spamd error")

// maxSpamdLine bounds one line of spamd's answer header.
const maxSpamdLine = 4096

// readSpamdReply reads one answer: the status line "SPAMD/1.x 0 EX_OK",
// header lines up to an empty line ("Content-length", "Spam: True ;
// 15.0 / 5.0"), then the body, at most maxBody bytes.
func readSpamdReply(r *bufio.Reader, maxBody int) (spamdReply, error) {
	var rep spamdReply
	line, err := callout.ReadLine(r, maxSpamdLine)
	if err != nil {
		return rep, fmt.Errorf("status line: %w", err)
	}
	proto, rest, _ := strings.Cut(string(line), " ")
	if !strings.HasPrefix(proto, "SPAMD/1.") {
		return rep, fmt.Errorf("not a spamd answer: %q", truncate(string(line), 60))
	}
	codeStr, msg, _ := strings.Cut(rest, " ")
	code, err := strconv.Atoi(codeStr)
	if err != nil || code < 0 {
		return rep, fmt.Errorf("bad status line %q", truncate(string(line), 60))
	}
	if code != 0 {
		return rep, fmt.Errorf("%w %d: %s", errSpamd, code, truncate(msg, 200))
	}
	length, gotSpam := -1, false
	for n := 0; ; n++ {
		if n > 32 {
			return rep, errors.New("too many header lines")
		}
		line, err := callout.ReadLine(r, maxSpamdLine)
		if err != nil {
			return rep, fmt.Errorf("header: %w", err)
		}
		if len(line) == 0 {
			break
		}
		name, value, ok := strings.Cut(string(line), ":")
		if !ok {
			return rep, fmt.Errorf("bad header line %q", truncate(string(line), 60))
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "content-length":
			length, err = strconv.Atoi(value)
			if err != nil || length < 0 {
				return rep, fmt.Errorf("bad Content-length %q", truncate(value, 60))
			}
			if length > maxBody {
				return rep, fmt.Errorf("%w: Content-length %d over %d", callout.ErrResponseTooLarge, length, maxBody)
			}
		case "spam":
			if err := rep.parseSpam(value); err != nil {
				return rep, err
			}
			gotSpam = true
		}
	}
	if !gotSpam {
		return rep, errors.New("answer without a Spam header")
	}
	if length >= 0 {
		rep.Body = make([]byte, length)
		if _, err := io.ReadFull(r, rep.Body); err != nil {
			return rep, fmt.Errorf("body: %w", err)
		}
		return rep, nil
	}
	rep.Body, err = callout.ReadAtMost(r, int64(maxBody))
	return rep, err
}

// parseSpam reads "True ; 15.0 / 5.0".
func (rep *spamdReply) parseSpam(v string) error {
	verdict, scores, ok := strings.Cut(v, ";")
	score, threshold, ok2 := strings.Cut(scores, "/")
	if !ok || !ok2 {
		return fmt.Errorf("bad Spam header %q", truncate(v, 60))
	}
	switch strings.ToLower(strings.TrimSpace(verdict)) {
	case "true", "yes":
		rep.Spam = true
	case "false", "no":
	default:
		return fmt.Errorf("bad Spam header %q", truncate(v, 60))
	}
	var err1, err2 error
	rep.Score, err1 = strconv.ParseFloat(strings.TrimSpace(score), 64)
	rep.Threshold, err2 = strconv.ParseFloat(strings.TrimSpace(threshold), 64)
	if err1 != nil || err2 != nil || rep.Score != rep.Score || rep.Threshold != rep.Threshold {
		return fmt.Errorf("bad score in Spam header %q", truncate(v, 60))
	}
	return nil
}

// symbols returns the rule names of a SYMBOLS answer.
func (rep *spamdReply) symbols() []string {
	var out []string
	for _, s := range strings.Split(string(bytes.TrimSpace(rep.Body)), ",") {
		if s = strings.TrimSpace(s); s != "" && isRuleName(s) {
			out = append(out, s)
		}
	}
	return out
}

func isRuleName(s string) bool {
	for _, c := range []byte(s) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
