package mapping

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The classes of configuration errors; an *Error wraps one of them, so
// errors.Is(err, ErrUnknownKey) works on what LoadFile returns.
var (
	ErrSyntax     = errors.New("TOML syntax error")
	ErrUnknownKey = errors.New("unknown key")
	ErrType       = errors.New("wrong value type")
	ErrValue      = errors.New("invalid value")
	ErrMissing    = errors.New("missing required key")
	ErrReference  = errors.New("undefined reference")
	ErrConflict   = errors.New("conflicting settings")
)

// Error is one configuration problem. It prints as "FILE:LINE: KEY: MSG";
// the line is left out when the problem has no place in the file (a
// required table that is missing altogether) and the key when the problem
// is not about one key (a TOML syntax error before any key).
type Error struct {
	File   string
	Line   int // 1-based; 0 when unknown
	Column int // 1-based; 0 when unknown
	// Key is the full path of the key: "routes[0].match.client_network[1]".
	Key string
	Msg string
	// Err is the class of the problem (ErrUnknownKey, ErrValue, ...).
	Err error
}

func (e *Error) Error() string {
	b := make([]byte, 0, len(e.File)+len(e.Key)+len(e.Msg)+16)
	b = append(b, e.File...)
	if e.Line > 0 {
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(e.Line), 10)
	}
	if e.Key != "" {
		b = append(b, ": "...)
		b = append(b, e.Key...)
	}
	b = append(b, ": "...)
	b = append(b, e.Msg...)
	return string(b)
}

// Unwrap returns the class of the error.
func (e *Error) Unwrap() error { return e.Err }

// errList collects the errors of one load, located by key path.
type errList struct {
	file string
	pos  positions
	errs []*Error
	keys map[string]bool // keys with an error
}

// add records an error about key; the line is the key's, or that of the
// closest enclosing table that appears in the file. Only the first error
// about a key is kept: a value that failed to decode keeps its default,
// which may fail a later check too.
func (l *errList) add(class error, key, format string, args ...any) {
	if l.keys[key] {
		return
	}
	if l.keys == nil {
		l.keys = make(map[string]bool)
	}
	l.keys[key] = true
	p := l.pos.find(key)
	l.errs = append(l.errs, &Error{
		File:   l.file,
		Line:   p.line,
		Column: p.col,
		Key:    key,
		Msg:    fmt.Sprintf(format, args...),
		Err:    class,
	})
}

// hasUnder reports whether a key under path has an error.
func (l *errList) hasUnder(path string) bool {
	for k := range l.keys {
		if strings.HasPrefix(k, path+".") || strings.HasPrefix(k, path+"[") {
			return true
		}
	}
	return false
}

// err returns nil or all errors, sorted by place in the file.
func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(l.errs, func(a, b *Error) int {
		return cmp.Or(cmp.Compare(a.Line, b.Line), cmp.Compare(a.Column, b.Column), cmp.Compare(a.Key, b.Key))
	})
	errs := make([]error, len(l.errs))
	for i, e := range l.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}
