package bridge

import (
	"strings"

	"github.com/opes-milter/opes-milter/ocp/ocpsmtp"
)

// Trace status values, added as a parameter of the OPES-System entry when a
// message was not adapted as configured (RFC 3897 §3 lets an entry carry
// parameters; docs/profile.md defines these).
const (
	traceAdapted   = ""          // adapted: no parameter
	traceUnadapted = "unadapted" // a failure policy let the message through unadapted
	traceBypassed  = "bypassed"  // an OPES-Bypass request or a skip rule was honoured
	traceSkipped   = "skipped"   // too large to adapt, delivered as received
)

// headerField is one header field as the MTA passes it: the name and the raw
// value (leading space kept, folds as "\r\n").
type headerField struct {
	name, value string
}

// traceFields returns the OPES-System line and, when via is set, the
// OPES-Via line naming the services applied, with raw values ready for the
// MTA (leading space included).
//
// privacyURI, when set, is the OPES system's privacy policy, carried as the
// parameter privacy-policy of the OPES-System entry (docs/profile.md §12:
// RFC 3897 §3.2 wants the system's trace entry to lead to its privacy
// policy; OPES-Via entries may drop parameters, RFC 4236 §4, and do).
func traceFields(systemURI string, services []string, status string, via bool, privacyURI string) []headerField {
	var params [][2]string
	if status != traceAdapted {
		params = append(params, [2]string{"status", status})
	}
	if privacyURI != "" {
		params = append(params, [2]string{"privacy-policy", privacyURI})
	}
	out := []headerField{{"OPES-System", " " + ocpsmtp.TraceEntry(systemURI, params...)}}
	if via && len(services) > 0 {
		vals := append([]string{systemURI}, services...)
		out = append(out, headerField{"OPES-Via", " " + strings.Join(vals, ",\r\n\t")})
	}
	return out
}

// isTraceHeader reports whether name is an OPES trace header.
func isTraceHeader(name string) bool {
	return strings.EqualFold(name, "OPES-System") || strings.EqualFold(name, "OPES-Via")
}

// traceInsertIndex returns where the new trace lines go among the header
// fields the MTA showed us (0 = top): directly above the topmost existing
// OPES-System/OPES-Via line, or, if there is none, directly below the leading
// block of Return-Path and Received lines (docs/profile.md, Tracing).
func traceInsertIndex(fields []headerField) int {
	for i, f := range fields {
		if isTraceHeader(f.name) {
			return i
		}
	}
	i := 0
	for i < len(fields) && (strings.EqualFold(fields[i].name, "Received") || strings.EqualFold(fields[i].name, "Return-Path")) {
		i++
	}
	return i
}
