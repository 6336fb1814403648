package ocpsmtp

import "github.com/opes-milter/opes-milter/ocp"

// Small readers of ocp values. Atoms arrive decoded (a quoted atom is the
// same as a bare one, RFC 4037 §3.1), so "4:RCPT" and RCPT read alike.

func atomOf(v ocp.Value) (string, bool) {
	a, ok := v.(ocp.Atom)
	return string(a), ok
}

// atomList reads a list of atoms.
func atomList(v ocp.Value) ([]string, bool) {
	l, ok := v.(ocp.List)
	if !ok {
		return nil, false
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, ok := atomOf(e)
		if !ok {
			return nil, false
		}
		out = append(out, s)
	}
	return out, true
}

func atoms(ss []string) ocp.List {
	l := make(ocp.List, len(ss))
	for i, s := range ss {
		l[i] = ocp.Atom(s)
	}
	return l
}

// single returns the one value of p, or false when p has none or several.
func single(p ocp.Param) (ocp.Value, bool) {
	if len(p.Values) != 1 {
		return nil, false
	}
	return p.Values[0], true
}

// isName reports whether s is a non-empty run of safe-OCTETs starting
// with a letter: the shape of part names, keywords and Allow atoms.
func isName(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if c := s[i]; !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}
