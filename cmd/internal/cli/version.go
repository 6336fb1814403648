package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Set at link time by the Makefile (-ldflags -X) when the toolchain
// records no VCS information (GOFLAGS=-buildvcs=false, a tarball); what
// the toolchain recorded wins.
var (
	linkVersion  string
	linkRevision string
)

// Build is what the Go toolchain recorded about the binary.
type Build struct {
	Version   string // module version: a tag, a pseudo-version, or "(devel)"
	Revision  string // VCS revision, "" when not built from a checkout
	Time      string // VCS commit time (RFC 3339), "" when unknown
	Modified  bool   // built from a tree with uncommitted changes
	GoVersion string
}

// ReadBuild returns the build information of the running binary.
func ReadBuild() (b Build) {
	b = Build{Version: "(devel)", GoVersion: runtime.Version()}
	defer func() {
		if b.Version == "(devel)" && linkVersion != "" {
			b.Version = linkVersion
		}
		if b.Revision == "" {
			b.Revision = linkRevision
		}
	}()
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b
	}
	if bi.Main.Version != "" {
		b.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		b.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.time":
			b.Time = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		}
	}
	return b
}

// Version is the line "NAME VERSION (revision REV[ modified], TIME) GO".
func Version(name string) string {
	b := ReadBuild()
	rev := "revision unknown"
	if b.Revision != "" {
		rev = "revision " + b.Revision
		if b.Modified {
			rev += " modified"
		}
		if b.Time != "" {
			rev += ", " + b.Time
		}
	}
	return fmt.Sprintf("%s %s (%s) %s", name, b.Version, rev, b.GoVersion)
}

// DefaultConfig is the configuration file the daemons read without -config.
const DefaultConfig = "/etc/opes-milter/opes-milter.toml"
