package main

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/mapping"
)

// Shape is one kind of message the load generator sends: its size on the
// wire (header and body, CRLF line ends), its number of recipients and of
// text/plain parts (more than one makes it multipart/mixed).
type Shape struct {
	Size  int64
	Rcpts int
	Parts int // 0 or 1: a single text/plain body
}

func (s Shape) String() string {
	t := formatSize(s.Size) + "/" + strconv.Itoa(s.Rcpts)
	if s.Parts > 1 {
		t += "/" + strconv.Itoa(s.Parts)
	}
	return t
}

// Mix is a weighted choice of message shapes.
type Mix []MixEntry

// MixEntry is one shape of a Mix with its relative weight.
type MixEntry struct {
	Shape  Shape
	Weight int
}

// ErrBadMix reports a -mix value that does not parse.
var ErrBadMix = errors.New("bad message mix")

// ParseMix parses "SIZE/RCPTS/PARTS:WEIGHT,..." such as
// "10KiB/3:8,100KiB/1/4:2". The weight may be left out (1), and so may the
// recipients (1) and the text parts (1).
func ParseMix(s string) (Mix, error) {
	var m Mix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		e := MixEntry{Shape: Shape{Rcpts: 1}, Weight: 1}
		spec, w, hasW := strings.Cut(item, ":")
		if hasW {
			n, err := strconv.Atoi(w)
			if err != nil || n < 1 {
				return nil, fmt.Errorf("%w: weight %q in %q", ErrBadMix, w, item)
			}
			e.Weight = n
		}
		size, rcpts, hasR := strings.Cut(spec, "/")
		rcpts, parts, hasP := strings.Cut(rcpts, "/")
		n, err := ParseSize(size)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadMix, err)
		}
		e.Shape.Size = n
		if hasR {
			r, err := strconv.Atoi(rcpts)
			if err != nil || r < 1 || r > 1000 {
				return nil, fmt.Errorf("%w: recipients %q in %q", ErrBadMix, rcpts, item)
			}
			e.Shape.Rcpts = r
		}
		if hasP {
			n, err := strconv.Atoi(parts)
			if err != nil || n < 1 || n > 1000 {
				return nil, fmt.Errorf("%w: parts %q in %q", ErrBadMix, parts, item)
			}
			e.Shape.Parts = n
		}
		m = append(m, e)
	}
	if len(m) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadMix)
	}
	return m, nil
}

// Pick returns the shape for a number drawn uniformly from [0, m.Total()).
func (m Mix) Pick(n int) Shape {
	for _, e := range m {
		if n < e.Weight {
			return e.Shape
		}
		n -= e.Weight
	}
	return m[len(m)-1].Shape
}

// Total is the sum of the weights.
func (m Mix) Total() int {
	t := 0
	for _, e := range m {
		t += e.Weight
	}
	return t
}

func (m Mix) String() string {
	parts := make([]string, len(m))
	for i, e := range m {
		parts[i] = e.Shape.String() + ":" + strconv.Itoa(e.Weight)
	}
	return strings.Join(parts, ",")
}

// ParseSize parses a byte count as the configuration writes it
// (mapping.ParseSize: "10240", "10KiB", "100MiB", "1MB"), at most 1 TiB.
func ParseSize(s string) (int64, error) {
	n, err := mapping.ParseSize(s)
	if err == nil && n > 1<<40 {
		err = fmt.Errorf("size %q is larger than 1TiB", s)
	}
	return n, err
}

// formatSize prints n with the largest binary unit that divides it.
func formatSize(n int64) string { return mapping.FormatSize(n) }
