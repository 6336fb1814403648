package main

import (
	"fmt"
	"io"

	"github.com/opes-milter/opes-milter/cmd/internal/calloutsrv"
	"github.com/opes-milter/opes-milter/mapping"
)

// cmdCheck validates a configuration file, builds its services and lists
// them.
func cmdCheck(path string, stdout io.Writer) error {
	cfg, _, _, err := calloutsrv.Load(path)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	for _, s := range cfg.Callout.Services {
		fmt.Fprintf(stdout, "  %-18s %-20s %s\n", s.Name, s.Kind, s.URI)
		if d := mapping.DescribeOptions(s.Options); d != "" {
			fmt.Fprintf(stdout, "  %-18s %s\n", "", d)
		}
	}
	return nil
}
