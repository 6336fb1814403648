// Package procs sets how many CPUs run a daemon's Go code at once
// (GOMAXPROCS) from the max_procs setting of its configuration.
//
// The daemons share their host with the MTA and the scanners. With
// max_procs = 0 (the default) a daemon takes half of what Go would take
// (the CPUs it may run on, or its cgroup's CPU limit), rounded up: on a
// small host the Go runtime would otherwise keep idle threads spinning for
// work at every wake-up of a mostly waiting relay, CPU that Postfix,
// clamd or rspamd need (docs/PERFORMANCE.md measures it). The GOMAXPROCS
// environment variable, when set, wins over 0; a positive max_procs wins
// over both.
package procs

import (
	"os"
	"runtime"
)

// Choose returns the GOMAXPROCS for max_procs n, given the runtime's
// default (goDefault, which honours the environment variable) and whether
// the environment variable GOMAXPROCS is set.
func Choose(n, goDefault int, envSet bool) int {
	switch {
	case n > 0:
		return n
	case envSet:
		return goDefault
	}
	return max(1, (goDefault+1)/2)
}

// Set applies Choose for max_procs n and returns what is in effect. Call
// it once, at start, before anything else changes GOMAXPROCS: the runtime's
// default is read from the current value. It is not changed on reload.
func Set(n int) int {
	_, envSet := os.LookupEnv("GOMAXPROCS")
	p := Choose(n, runtime.GOMAXPROCS(0), envSet)
	if p != runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(p)
	}
	return p
}
