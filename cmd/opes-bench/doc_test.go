package main

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSpliceGenerated(t *testing.T) {
	gen := beginMarker + "\nNEW\n" + endMarker + "\n"
	old := beginMarker + "\nOLD\n" + endMarker + "\n"
	tests := []struct {
		name, text, want string
	}{
		{"replace", "# P\n\nintro\n\n" + old + "\n## OCP codec and engine\n\nx\n",
			"# P\n\nintro\n\n" + gen + "\n## OCP codec and engine\n\nx\n"},
		{"before codec section", "# P\n\n## OCP codec and engine\n\nx\n",
			"# P\n\n" + gen + "\n## OCP codec and engine\n\nx\n"},
		{"append", "# P\n\nintro", "# P\n\nintro\n\n" + gen},
		{"replace at end", "# P\n" + old, "# P\n" + gen},
	}
	for _, tt := range tests {
		got, err := spliceGenerated(tt.text, gen)
		if err != nil || got != tt.want {
			t.Errorf("%s:\n%q, %v\nwant\n%q", tt.name, got, err, tt.want)
		}
	}
	if _, err := spliceGenerated("x\n"+beginMarker+"\n", gen); !errors.Is(err, ErrMarkers) {
		t.Errorf("unbalanced markers: %v", err)
	}
}

func TestUpdateDoc(t *testing.T) {
	path := filepath.Join(t.TempDir(), "PERFORMANCE.md")
	gen := beginMarker + "\nONE\n" + endMarker + "\n"
	if err := updateDoc(path, gen); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(b), docSkeleton) || !strings.HasSuffix(string(b), gen) {
		t.Fatalf("new doc %q", b)
	}
	// Hand-written text around the markers survives a second run.
	if err := os.WriteFile(path, []byte(string(b)+"\n## Profiles\n\nkept\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateDoc(path, strings.Replace(gen, "ONE", "TWO", 1)); err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if s := string(b); !strings.Contains(s, "TWO") || strings.Contains(s, "ONE") || !strings.HasSuffix(s, "## Profiles\n\nkept\n") {
		t.Errorf("updated doc %q", s)
	}
}
