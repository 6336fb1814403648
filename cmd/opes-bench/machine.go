package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// Machine describes where the bench ran.
type Machine struct {
	CPU      string // model name and cores from /proc/cpuinfo
	NProc    int
	Memory   string // MemTotal and MemAvailable from /proc/meminfo
	System   string // kernel and distribution
	Software string // Go, Postfix, go-milter versions
}

// describeMachine reads /proc and the installed versions.
func describeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU()}
	info := procKeys("/proc/cpuinfo")
	m.CPU = info["model name"]
	if c := info["cpu cores"]; c != "" {
		m.CPU += ", " + c + " cores"
	}
	if mhz := info["cpu MHz"]; mhz != "" {
		if f, err := strconv.ParseFloat(mhz, 64); err == nil {
			m.CPU += fmt.Sprintf(", %.0f MHz", f)
		}
	}
	mem := procKeys("/proc/meminfo")
	m.Memory = fmt.Sprintf("%s total, %s available, no swap use measured", kB(mem["MemTotal"]), kB(mem["MemAvailable"]))
	if s := mem["SwapTotal"]; s != "" && s != "0 kB" {
		m.Memory = fmt.Sprintf("%s total, %s available, swap %s", kB(mem["MemTotal"]), kB(mem["MemAvailable"]), kB(s))
	} else {
		m.Memory = fmt.Sprintf("%s total, %s available, no swap", kB(mem["MemTotal"]), kB(mem["MemAvailable"]))
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	m.System = "Linux " + strings.TrimSpace(string(kernel))
	if d, err := os.ReadFile("/etc/debian_version"); err == nil {
		m.System += ", Debian " + strings.TrimSpace(string(d))
	}
	m.Software = runtime.Version()
	if out, err := exec.Command("postconf", "-d", "-h", "mail_version").Output(); err == nil {
		m.Software += ", Postfix " + strings.TrimSpace(string(out))
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/d--j/go-milter" {
				m.Software += ", go-milter " + d.Version
			}
		}
	}
	return m
}

// procKeys reads the first "key : value" of each key of a /proc file.
func procKeys(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		k = strings.TrimSpace(k)
		if _, seen := out[k]; ok && !seen {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// kB turns "24683444 kB" into "23.5 GiB".
func kB(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return "?"
	}
	n, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return s
	}
	return fmt.Sprintf("%.1f GiB", n/(1<<20))
}
