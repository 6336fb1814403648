package ocptest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// ReadTranscript parses the golden transcript testdata/profile/NAME at the
// module root (format: docs/profile.md, section 16), failing the test when
// it cannot. Test packages run in their own directory, one level below the
// root.
func ReadTranscript(t testing.TB, name string) []ocpsmtp.Step {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "testdata", "profile", name))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := ocpsmtp.ParseTranscript(data)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return steps
}
