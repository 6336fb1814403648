package bridge

import (
	"bytes"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSectionsGolden cuts the body of every sample under testdata/mail as
// the processor sends SECTIONS and compares the AM-Index → byte range
// mapping ("AM-Index start end delim line", offsets in the body) with the
// golden file under testdata/sections, which callout's TestSectionsAgree
// derives from the callout server's section tree.
func TestSectionsGolden(t *testing.T) {
	samples, _ := filepath.Glob(filepath.Join("..", "testdata", "mail", "*.eml"))
	if len(samples) == 0 {
		t.Fatal("no samples")
	}
	for _, p := range samples {
		t.Run(filepath.Base(p), func(t *testing.T) {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			msg, err := mail.ReadMessage(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			var rest bytes.Buffer
			if _, err := rest.ReadFrom(msg.Body); err != nil {
				t.Fatal(err)
			}
			body := data[len(data)-rest.Len():]
			secs, err := splitSections(bytes.NewReader(body), int64(len(body)), msg.Header.Get("Content-Type"))
			if err != nil {
				t.Fatal(err)
			}
			var got strings.Builder
			for _, s := range secs {
				fmt.Fprintf(&got, "%s %d %d %d %d\n", s.index(), s.start, s.end, s.delim, s.delimStart)
			}
			golden := filepath.Join("..", "testdata", "sections", strings.TrimSuffix(filepath.Base(p), ".eml")+".txt")
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got.String() != string(want) {
				t.Fatalf("%s\n got %q\nwant %q", golden, got.String(), want)
			}
		})
	}
}
