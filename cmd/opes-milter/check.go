package main

import (
	"io"
)

// cmdCheck validates a configuration file as run does, compares it with
// its [callout] side, and prints the compiled routes.
func cmdCheck(path string, stdout io.Writer) error {
	cfg, _, err := loadMilter(path)
	if err != nil {
		return err
	}
	if err := compareCallout(cfg); err != nil {
		return err
	}
	return cfg.Format(stdout)
}
