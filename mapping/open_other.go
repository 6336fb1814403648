//go:build !unix

package mapping

import "os"

// openConfig opens a configuration file.
func openConfig(path string) (*os.File, error) { return os.Open(path) }
