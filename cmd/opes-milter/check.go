package main

import (
	"io"

	"github.com/opes-milter/opes-milter/mapping"
)

// cmdCheck validates a configuration file and prints its compiled routes.
func cmdCheck(args []string, stdout, stderr io.Writer) error {
	_, path, err := parseFlags("check", args, stderr, nil)
	if err != nil {
		return err
	}
	return mapping.Check(stdout, path)
}
