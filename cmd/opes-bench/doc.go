package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// docSkeleton starts docs/PERFORMANCE.md when it does not exist yet.
const docSkeleton = "# Performance\n\nWhat opes-milter costs, measured by `make bench` (cmd/opes-bench).\n\n"

// codecHeading is the section of docs/PERFORMANCE.md that another part of
// `make bench` owns; the generated part goes before it.
const codecHeading = "## OCP codec and engine"

// ErrMarkers reports a begin marker without its end marker.
var ErrMarkers = errors.New("unbalanced opes-bench markers")

// updateDoc puts the generated text (markers included) into the file at
// path: in place of the previous generated text, else before the OCP
// codec section, else at the end. The rest of the file is kept byte for
// byte.
func updateDoc(path, generated string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	text := string(old)
	if err != nil {
		text = docSkeleton
	}
	out, err := spliceGenerated(text, generated)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(out), 0o644)
}

// spliceGenerated does the work of updateDoc on the file's text.
func spliceGenerated(text, generated string) (string, error) {
	if i := strings.Index(text, beginMarker); i >= 0 {
		j := strings.Index(text[i:], endMarker)
		if j < 0 {
			return "", ErrMarkers
		}
		end := i + j + len(endMarker)
		if end < len(text) && text[end] == '\n' {
			end++
		}
		return text[:i] + generated + text[end:], nil
	}
	if i := strings.Index(text, "\n"+codecHeading); i >= 0 {
		return text[:i+1] + generated + "\n" + text[i+1:], nil
	}
	if !strings.HasSuffix(text, "\n") {
		text += "\n"
	}
	return text + "\n" + generated, nil
}
