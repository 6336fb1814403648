package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opes-milter/opes-milter/internal/peerprobe"
)

// ContribConfig is the configuration `make run` uses, relative to the
// repository root; every opes-milter case starts from it.
const ContribConfig = "contrib/opes-milter.toml"

// Chains of the opes-milter cases.
const (
	// chainFull is the chain of ContribConfig, case (c).
	chainFull = `services = ["recipient-policy", "header-tag", "disclaimer", "attachment-filter"]`
	// chainPass is case (b): recipient-policy adapts RCPT and size-limit
	// adapts RAWDATA; neither matches a generated message, so each answers
	// unchanged (DUY). opes-callout has no pass-through service kind and
	// refuses services configured to do nothing, hence these two.
	chainPass = `services = ["recipient-policy", "size-limit"]`
	// passServices defines size-limit on both sides.
	passServices = `
# opes-bench: the RAWDATA half of the pass-through chain of case (b).
[services.size-limit]
uri = "http://opes-milter.example/services/size-limit"

[callout.services.size-limit]
uri = "http://opes-milter.example/services/size-limit"
kind = "size-limit"
max = "1GiB"
`
)

// chainClamd is case (d): the clamd service alone, which scans every
// message and adds its verdict header, on a route that offers the message
// (RAWDATA) and nothing else: what clamav-milter, the anchor, does.
const chainClamd = `services = ["antivirus"]`

// partsScanOnly are the route's parts in case (d) (see chainClamd).
var partsScanOnly = [2]string{`adaptive = ["RAWDATA"]`, `informative = []`}

// partsScanEnvelope are the route's parts in the spam cases: the message
// adaptive, the envelope informative (rspamd's IP, Helo, From and Rcpt
// headers come from it), no part a recipient could be refused on: what an
// admin replacing rspamd's milter proxy or amavisd-new writes, and what
// those answer per message (the MTA then waits for no RCPT reply,
// docs/profile.md 7).
var partsScanEnvelope = [2]string{`adaptive = ["RAWDATA"]`, `informative = ["IP", "HELO", "MAIL", "RCPT"]`}

// routeParts are the route's parts in ContribConfig, which Parts replaces.
var routeParts = [2]string{`adaptive = ["RCPT", "RAWDATA"]`, `informative = ["IP", "HELO", "MAIL"]`}

// clamdServices defines the clamd service on both sides.
const clamdServices = `
# opes-bench: the clamd service of case (d).
[services.antivirus]
uri = "http://opes-milter.example/services/antivirus"

[callout.services.antivirus]
uri = "http://opes-milter.example/services/antivirus"
kind = "clamd"
address = "unix:@SOCKET@"
`

// opesVariant says how a case changes ContribConfig.
type opesVariant struct {
	PassThrough    bool   // case (b) instead of (c)
	MaxSessions    int    // [milter] max_sessions; 0 keeps it
	MaxMessageSize string // [milter] max_message_size; "" keeps it
	Alt            bool   // run the binaries of env.altBin
	Local          bool   // opes-milter run -local alone, no opes-callout
	// Chain, when set, replaces the pass-through chain; Extra is appended
	// (the spam cases' scanner service).
	Chain, Extra string
	// Parts, when set, replaces the route's adaptive and informative
	// parts (routeParts).
	Parts [2]string
}

// ErrConfigDrift reports that ContribConfig no longer has a line the
// bench edits; the bench must follow the file.
var ErrConfigDrift = errors.New("contrib/opes-milter.toml changed: the bench cannot apply its edit")

// opesConfig returns ContribConfig's text with the bench's addresses and
// spool directory and the variant's changes.
func opesConfig(contrib, milterAddr, calloutAddr, spoolDir string, v opesVariant) (string, error) {
	edits := [][2]string{
		{`listen = ["inet:127.0.0.1:8890"]`, `listen = ["inet:` + milterAddr + `"]`},
		{`addresses = ["127.0.0.1:8891"]`, `addresses = ["` + calloutAddr + `"]`},
		{`listen = ["127.0.0.1:8891"]`, `listen = ["` + calloutAddr + `"]`},
		{`spool_dir = ""`, fmt.Sprintf("spool_dir = %q", spoolDir)},
	}
	switch {
	case v.Chain != "":
		edits = append(edits, [2]string{chainFull, v.Chain})
	case v.PassThrough:
		edits = append(edits, [2]string{chainFull, chainPass})
	}
	if v.Parts != ([2]string{}) {
		edits = append(edits, [2]string{routeParts[0], v.Parts[0]}, [2]string{routeParts[1], v.Parts[1]})
	}
	if v.MaxSessions > 0 {
		edits = append(edits, [2]string{"max_sessions = 500", "max_sessions = " + strconv.Itoa(v.MaxSessions)})
		if v.MaxSessions > 1000 { // max_connections may not be below max_sessions
			edits = append(edits, [2]string{"max_connections = 1000", "max_connections = " + strconv.Itoa(v.MaxSessions)})
		}
	}
	if v.MaxMessageSize != "" {
		edits = append(edits, [2]string{`max_message_size = "50MiB"`, fmt.Sprintf("max_message_size = %q", v.MaxMessageSize)})
	}
	s := contrib
	for _, e := range edits {
		if !strings.Contains(s, e[0]) {
			return "", fmt.Errorf("%w: no %q", ErrConfigDrift, e[0])
		}
		s = strings.Replace(s, e[0], e[1], 1)
	}
	switch {
	case v.Chain != "":
		s += v.Extra
	case v.PassThrough:
		s += passServices
	}
	return s, nil
}

// contribFor returns the example configuration the variant's binaries
// read: for the -alt-bin build the opes-milter.toml beside its binaries
// when there is one (the configuration of its own tree: a build from
// before a change may refuse keys added since), else the tree's.
func (e *env) contribFor(v opesVariant) string {
	if v.Alt {
		if alt := filepath.Join(e.altBin, "opes-milter.toml"); fileExists(alt) {
			return alt
		}
	}
	return filepath.Join(e.repo, ContribConfig)
}

func fileExists(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// opesPair is a running opes-milter with its opes-callout (none with
// -local).
type opesPair struct {
	MilterAddr, CalloutAddr string
	Milter, Callout         *child
}

// startOpes writes the variant's configuration into dir and starts
// opes-callout, then opes-milter, from the built binaries.
func (e *env) startOpes(dir string, v opesVariant) (*opesPair, error) {
	contrib, err := os.ReadFile(e.contribFor(v))
	if err != nil {
		return nil, err
	}
	p := &opesPair{}
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	p.MilterAddr, p.CalloutAddr = addrs[0], addrs[1]
	cfg, err := opesConfig(string(contrib), p.MilterAddr, p.CalloutAddr, dir, v)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "opes-milter.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	milterBin, calloutBin := e.milterBin, e.calloutBin
	if v.Alt {
		milterBin, calloutBin = filepath.Join(e.altBin, "opes-milter"), filepath.Join(e.altBin, "opes-callout")
	}
	argv := []string{milterBin, "run", "-config", path}
	if v.Local {
		argv = append(argv, "-local")
	} else {
		p.Callout, err = startChild("opes-callout", []string{calloutBin, "run", "-config", path}, dir,
			filepath.Join(dir, "opes-callout.log"), func() bool { return peerprobe.Listening(p.CalloutAddr) })
		if err != nil {
			return nil, err
		}
	}
	p.Milter, err = startChild("opes-milter", argv, dir,
		filepath.Join(dir, "opes-milter.log"), func() bool { return peerprobe.Listening(p.MilterAddr) })
	if err != nil {
		p.stopCallout()
		return nil, err
	}
	return p, nil
}

// Stop stops opes-milter, then opes-callout.
func (p *opesPair) Stop() {
	p.Milter.Stop()
	p.stopCallout()
}

func (p *opesPair) stopCallout() {
	if p.Callout != nil {
		p.Callout.Stop()
	}
}

// Components are the daemons, for a meter: both, or opes-milter alone
// with -local.
func (p *opesPair) Components() []Component {
	comps := []Component{{Name: "opes-milter", Pid: p.Milter.Pid()}}
	if p.Callout != nil {
		comps = append(comps, Component{Name: "opes-callout", Pid: p.Callout.Pid()})
	}
	return comps
}
