package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/opes-milter/opes-milter/cmd/internal/cli"
)

// env is where a bench run finds its programs and keeps its files.
type env struct {
	repo       string // repository root (contrib/, e2e/testdata/)
	milterBin  string
	calloutBin string
	altBin     string // another build of opes-milter and opes-callout, for the -alt cases
	selfBin    string // this program, for "opes-bench noop"
	work       string // scratch directory, removed at the end
	progress   io.Writer

	clamdOnce sync.Once // the antivirus cases' clamd (clamd.go), started on first use
	clamdProc *clamdProc
	clamdErr  error
}

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.progress, "opes-bench: "+format+"\n", args...)
}

// cmdRun runs the cases in interleaved rounds, then the concurrency and
// large-message checks, prints the report and writes it into the doc.
func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := Options{Mix: defaultMix(), PostfixSize: 10 << 10}
	var (
		caseList    = fs.String("cases", "a,b,c,d,clamd,clamav-milter,postfix,postfix+a,postfix+b,postfix+d,postfix+d-local,postfix+clamav-milter,spamd,spamc,postfix+rspamd-milter,postfix+rspamd,postfix+rspamd-local", "cases to run, in this order within a round")
		repo        = fs.String("repo", "", "repository `root`; default: found from the working directory")
		bin         = fs.String("bin", "", "`directory` with opes-milter and opes-callout; default: ROOT/bin")
		doc         = fs.String("doc", "docs/PERFORMANCE.md", "report `file` to update, relative to the root; \"\" for none")
		concurrency = fs.Int("concurrency", 1000, "sessions held open at once for the many-sessions check; 0 skips it")
		large       int64
		keep        = fs.Bool("keep", false, "keep the scratch directory (daemon logs, Postfix maillogs)")
		altBin      = fs.String("alt-bin", "", "`directory` with another build of opes-milter and opes-callout (and the opes-milter.toml of its tree, if it differs): "+
			"each opes-milter case also runs with it, in the same rounds (before/after a change)")
	)
	fs.IntVar(&o.Runs, "runs", 5, "interleaved runs of each case")
	fs.IntVar(&o.Sessions, "sessions", 16, "concurrent sessions (milter connections, or smtp-source -s)")
	fs.DurationVar(&o.Duration, "duration", 8*time.Second, "measured time of a direct case")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unmeasured load before each direct run")
	fs.Var(mixFlag{&o.Mix}, "mix", "message shapes of the direct cases `SIZE/RCPTS:WEIGHT,...`")
	fs.IntVar(&o.PostfixMessages, "postfix-messages", 3000, "messages per Postfix run (smtp-source -m)")
	fs.IntVar(&o.Slices, "slices", 6, "with more than 1, the cases of a round run side by side (all but clamd directly, spamd and spamc): "+
		"all up at once, each case's messages (Postfix) or time (direct) in this many slices, each slice going to every case in turn")
	fs.IntVar(&o.PostfixWarmup, "postfix-warmup", 64, "unmeasured messages before each Postfix run")
	fs.Var(sizeFlag{&o.PostfixSize}, "postfix-size", "message body size of the Postfix cases (smtp-source -l)")
	fs.IntVar(&o.PostfixRcpts, "postfix-rcpts", 3, "recipients per message of the Postfix cases (smtp-source -r)")
	fs.DurationVar(&o.PostfixDrainWait, "postfix-drain", 90*time.Second, "bound on delivering a Postfix run's queue")
	large = 100 << 20
	fs.Var(sizeFlag{&large}, "large", "size of the large-message check; 0 skips it")
	if err := parse(fs, args); err != nil {
		return err
	}
	var cases []Case
	for _, id := range strings.Split(*caseList, ",") {
		if id = strings.TrimSpace(id); id == "" {
			continue
		}
		c, ok := caseByID(id)
		if !ok {
			fmt.Fprintf(stderr, "opes-bench run: unknown case %q\n", id)
			return cli.ErrUsage
		}
		cases = appendCase(cases, c)
		if *altBin != "" && c.Alternates() && !c.Alt {
			if c.Milter == milterClamd && !altKnowsClamd(*altBin) {
				fmt.Fprintf(stderr, "opes-bench run: %s runs without its alt twin: the -alt-bin build's opes-milter.toml names no clamd service kind (a build from before the clamd service)\n", c.ID)
				continue
			}
			cases = appendCase(cases, altOf(c))
		}
	}
	if o.Runs < 1 || o.Sessions < 1 {
		fmt.Fprintf(stderr, "opes-bench run: -runs and -sessions must be positive\n")
		return cli.ErrUsage
	}

	e, err := newEnv(*repo, *bin, *altBin, stderr)
	if err != nil {
		return err
	}
	if *keep {
		e.logf("keeping %s", e.work)
	} else {
		defer os.RemoveAll(e.work)
	}
	defer func() {
		if e.clamdProc != nil {
			e.clamdProc.Stop()
		}
	}()

	rep := &Report{Machine: describeMachine(), Options: o, Cases: cases, Started: time.Now(), Runs: map[string][]Run{}, AltBin: *altBin}
	logRun := func(r Run) {
		e.logf("  %d messages, %d errors, %.1f msg/s, %.3f CPU s per 1,000 messages",
			r.Messages, r.Errors, r.Throughput(), r.CPUPer1000())
		for _, fe := range r.FirstErrors {
			e.logf("  error: %s", fe)
		}
		rep.Runs[r.Case] = append(rep.Runs[r.Case], r)
	}
	for round := 1; round <= o.Runs; round++ {
		var sideBySide []Case
		for _, c := range roundOrder(cases, round) {
			if err := ctx.Err(); err != nil {
				return err
			}
			if c.sideBySide() && o.Slices > 1 {
				sideBySide = append(sideBySide, c)
				continue
			}
			e.logf("round %d/%d: %s", round, o.Runs, c.Title)
			r, err := e.runCase(ctx, c, o)
			if err != nil {
				return fmt.Errorf("%s: %w", c.Title, err)
			}
			logRun(r)
		}
		if len(sideBySide) == 0 {
			continue
		}
		e.logf("round %d/%d: %d cases side by side, %d slices", round, o.Runs, len(sideBySide), o.Slices)
		runs, err := e.runSideBySide(ctx, sideBySide, o, e.logf)
		if err != nil {
			return err
		}
		for _, c := range sideBySide {
			e.logf("round %d/%d: %s", round, o.Runs, c.Title)
			logRun(runs[c.ID])
		}
	}
	if *concurrency > 0 {
		e.logf("%d sessions at once against (c)", *concurrency)
		cr, err := e.runConcurrency(ctx, *concurrency, 3, o.Mix)
		if err != nil {
			return fmt.Errorf("concurrency: %w", err)
		}
		rep.Concurrency = &cr
	}
	if large > 0 {
		for _, id := range []string{"b", "c"} {
			c, _ := caseByID(id)
			e.logf("one %s message through %s", formatSize(large), c.Title)
			lr, err := e.runLarge(ctx, c, large)
			if err != nil {
				return fmt.Errorf("large message: %w", err)
			}
			rep.Large = append(rep.Large, lr)
		}
	}
	rep.Took = time.Since(rep.Started)

	text := rep.Markdown()
	fmt.Fprint(stdout, text)
	if *doc != "" {
		path := *doc
		if !filepath.IsAbs(path) {
			path = filepath.Join(e.repo, path)
		}
		if err := updateDoc(path, text); err != nil {
			return err
		}
		e.logf("wrote %s", path)
	}
	if n := rep.Failures(); n > 0 {
		return fmt.Errorf("%d messages failed; see the report", n)
	}
	return nil
}

// newEnv locates the repository and the binaries and makes the scratch
// directory (world-readable: Postfix and smtp-sink drop privileges).
func newEnv(repo, bin, altBin string, progress io.Writer) (*env, error) {
	var err error
	if repo == "" {
		if repo, err = findRepo(); err != nil {
			return nil, err
		}
	}
	if bin == "" {
		bin = filepath.Join(repo, "bin")
	}
	e := &env{repo: repo, progress: progress, altBin: altBin,
		milterBin: filepath.Join(bin, "opes-milter"), calloutBin: filepath.Join(bin, "opes-callout")}
	bins := []string{e.milterBin, e.calloutBin}
	if altBin != "" {
		bins = append(bins, filepath.Join(altBin, "opes-milter"), filepath.Join(altBin, "opes-callout"))
	}
	for _, p := range bins {
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("%w (run make build)", err)
		}
	}
	if e.selfBin, err = os.Executable(); err != nil {
		return nil, err
	}
	if e.work, err = os.MkdirTemp("", "opes-bench-"); err != nil {
		return nil, err
	}
	if err := os.Chmod(e.work, 0o755); err != nil {
		return nil, err
	}
	return e, nil
}

// modulePath identifies the repository's go.mod.
const modulePath = "github.com/opes-milter/opes-milter"

// findRepo walks up from the working directory to the go.mod of the module.
func findRepo() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module "+modulePath+"\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("not inside the opes-milter repository (use -repo)")
		}
		dir = parent
	}
}

// altKnowsClamd reports whether the -alt-bin build has the clamd service:
// the example configuration of its tree (beside its binaries) documents
// every service kind it has.
func altKnowsClamd(altBin string) bool {
	b, err := os.ReadFile(filepath.Join(altBin, "opes-milter.toml"))
	return err != nil || strings.Contains(string(b), `kind = "clamd"`)
}
