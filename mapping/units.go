package mapping

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// duration is a time.Duration written as a string: "5s", "1m30s".
type duration time.Duration

func (d *duration) decodeTOML(v any) error {
	s, ok := v.(string)
	if !ok {
		return &typeError{`a duration string like "5s"`, v}
	}
	t, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`bad duration %q (write it like "500ms", "5s" or "4m")`, s)
	}
	if t < 0 {
		return fmt.Errorf("negative duration %q", s)
	}
	*d = duration(t)
	return nil
}

// size is a number of bytes: an integer, or a string with a unit
// ("10KB" = 10000, "1MiB" = 1048576, "512B").
type size int64

var sizeUnits = [...]struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1},
}

func (z *size) decodeTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("negative size %d", v)
		}
		*z = size(v)
		return nil
	case string:
		n, err := ParseSize(v)
		if err != nil {
			return err
		}
		*z = size(n)
		return nil
	}
	return &typeError{`a size like 1048576 or "1MiB"`, v}
}

// ParseSize parses a size as the configuration writes it: a byte count
// with an optional unit, "1048576", "512KB" (1000s) or "10MiB" (1024s).
func ParseSize(s string) (int64, error) {
	num, mult := strings.TrimSpace(s), int64(1)
	for _, u := range sizeUnits {
		if strings.HasSuffix(num, u.name) {
			num, mult = strings.TrimSpace(strings.TrimSuffix(num, u.name)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf(`bad size %q (write it like 1048576, "512KB" or "10MiB")`, s)
	}
	if n > math.MaxInt64/mult {
		return 0, fmt.Errorf("size %q is too large", s)
	}
	return n * mult, nil
}

// FormatSize prints a size with the largest binary unit that divides it.
func FormatSize(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return strconv.FormatInt(n>>30, 10) + "GiB"
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + "MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + "KiB"
	}
	return strconv.FormatInt(n, 10) + "B"
}

// fileMode is a unix permission: a string of octal digits ("0660") or a
// TOML octal integer (0o660).
type fileMode os.FileMode

func (m *fileMode) decodeTOML(v any) error {
	var n uint64
	switch v := v.(type) {
	case int64:
		if v < 0 {
			return fmt.Errorf("negative mode %d", v)
		}
		n = uint64(v)
	case string:
		var err error
		if n, err = strconv.ParseUint(v, 8, 32); err != nil {
			return fmt.Errorf(`bad mode %q (write octal digits, like "0660")`, v)
		}
	default:
		return &typeError{`a mode like "0660"`, v}
	}
	if n > 0o777 {
		return fmt.Errorf("mode %#o has bits beyond 0777", n)
	}
	*m = fileMode(n)
	return nil
}

// decodeEnum decodes a string that must be one of names; it returns the
// index.
func decodeEnum(v any, names []string) (int, error) {
	s, ok := v.(string)
	if !ok {
		return 0, &typeError{"one of " + strings.Join(quoteAll(names), ", "), v}
	}
	for i, n := range names {
		if s == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%q is not one of %s", s, strings.Join(quoteAll(names), ", "))
}

func quoteAll(list []string) []string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return q
}
