package main

import (
	"io"

	"github.com/opes-milter/opes-milter/mapping"
)

// cmdCheck validates a configuration file and prints its compiled routes.
func cmdCheck(path string, stdout io.Writer) error {
	return mapping.Check(stdout, path)
}
