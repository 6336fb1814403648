package mapping

import (
	"errors"
	"reflect"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// load parses, decodes and compiles one configuration.
func load(name string, data []byte) (*Config, error) {
	var root map[string]any
	if _, err := toml.Decode(string(data), &root); err != nil {
		return nil, syntaxError(name, err)
	}
	errs := &errList{file: name, pos: locate(data)}
	var raw rawFile
	rv := reflect.ValueOf(&raw).Elem()
	setDefaults(rv)
	(&decoder{errs}).table("", root, rv)

	b := &builder{errs: errs, cfg: &Config{File: name, pos: errs.pos}}
	for _, k := range milterKeys {
		if _, ok := root[k]; ok {
			b.milterSide(&raw)
			break
		}
	}
	if raw.Callout != nil {
		b.cfg.Callout = b.callout(raw.Callout)
		b.checkMailChains()
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	return b.cfg, nil
}

// syntaxError converts the toml parser's error.
func syntaxError(name string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		return &Error{File: name, Line: pe.Position.Line, Column: pe.Position.Col, Key: pe.LastKey, Msg: pe.Message, Err: ErrSyntax}
	}
	return &Error{File: name, Msg: err.Error(), Err: ErrSyntax}
}

// builder compiles the raw structs into the Config, recording problems.
type builder struct {
	errs *errList
	cfg  *Config
}

func (b *builder) errorf(class error, key, format string, args ...any) {
	b.errs.add(class, key, format, args...)
}

// atLeast checks an integer setting.
func (b *builder) atLeast(key string, v, least int) {
	if v < least {
		b.errorf(ErrValue, key, "must be at least %d, not %d", least, v)
	}
}

// positive checks a duration setting.
func (b *builder) positive(key string, d duration) time.Duration {
	if d <= 0 {
		b.errorf(ErrValue, key, "must be longer than 0s")
	}
	return time.Duration(d)
}

// hostPorts checks a list of host:port addresses at key and returns them
// in the form parseHostPort gives; a repeated address names the first one
// as also[j].
func (b *builder) hostPorts(key, also string, list []string, srv bool) []string {
	var out []string
	seen := make(map[string]int)
	for i, a := range list {
		akey := indexPath(key, i)
		if name, ok := strings.CutPrefix(a, SRVPrefix); ok && srv {
			// An SRV name (server sets only): its targets and ports
			// come from DNS.
			if err := checkHost(strings.TrimSuffix(name, ".")); err != nil {
				b.errorf(ErrValue, akey, "%q: SRV %v", a, err)
				continue
			}
			a = SRVPrefix + strings.ToLower(strings.TrimSuffix(name, "."))
			if j, dup := seen[a]; dup {
				b.errorf(ErrConflict, akey, "%q is also %s[%d]", a, also, j)
				continue
			}
			seen[a] = i
			out = append(out, a)
			continue
		}
		hp, err := parseHostPort(a)
		if err != nil {
			b.errorf(ErrValue, akey, "%q: %v", a, err)
			continue
		}
		if j, dup := seen[hp]; dup {
			b.errorf(ErrConflict, akey, "%q is also %s[%d]", a, also, j)
			continue
		}
		seen[hp] = i
		out = append(out, hp)
	}
	return out
}

// below checks a deadline against an MTA limit it must stay under.
func (b *builder) below(key string, d duration, limitKey string, limit duration, why string) {
	if d > 0 && limit > 0 && d >= limit {
		b.errorf(ErrValue, key, "%v is not below %s (%v): %s", time.Duration(d), limitKey, time.Duration(limit), why)
	}
}

// uri checks an absolute URI setting.
func (b *builder) uri(key, s string) {
	if err := checkURI(s); err != nil {
		b.errorf(ErrValue, key, "%v", err)
	}
}

// milterSide compiles everything opes-milter reads.
func (b *builder) milterSide(raw *rawFile) {
	b.milter(&raw.Milter)
	b.trace(&raw.Trace)
	b.bypass(&raw.Bypass)
	b.servers(raw.Servers)
	b.services(raw.Services)
	b.chains(raw.Chains)
	b.routes(raw.Routes)
	b.skips(raw.Skip)
}

// defined lists the names a reference may use, for error messages.
func defined[V any](what string, m map[string]V) string {
	if len(m) == 0 {
		return "no " + what + " is defined"
	}
	return what + "s defined: " + strings.Join(sortedKeys(m), ", ")
}
