package ocpsmtp

import "strings"

// Merge combines the profiles several services of one service group need
// into the one profile to offer for that group: a part adaptive for any
// service is adaptive; a part only read by all is informative; header lists
// and extensions are united; and mutually exclusive data parts are widened
// to RAWDATA (see Widen), adaptive when any data part was. The URI is the
// first profile's.
func Merge(ps ...Profile) Profile {
	var out Profile
	if len(ps) > 0 {
		out.URI = ps[0].URI
	}
	var all, adaptive []Part
	for _, p := range ps {
		all = append(all, p.Parts()...)
		adaptive = append(adaptive, p.Adaptive...)
		out.HeaderList = unite(out.HeaderList, p.HeaderList)
		out.Extensions = unite(out.Extensions, p.Extensions)
	}
	widened := CheckExclusive(all) != nil
	for _, p := range Widen(all) {
		isAdaptive := contains(adaptive, p)
		if widened && p == PartRAWDATA {
			isAdaptive = false
			for _, q := range adaptive {
				isAdaptive = isAdaptive || q.Data()
			}
		}
		if isAdaptive {
			out.Adaptive = append(out.Adaptive, p)
		} else {
			out.Informative = append(out.Informative, p)
		}
	}
	if containsFold(out.HeaderList, AllHeaders) {
		out.HeaderList = []string{AllHeaders}
	}
	if a, i := out.Has(PartSINGLEHEADERS); !a && !i {
		out.HeaderList = nil
	}
	return out
}

// unite appends to a the strings of b it lacks, ignoring case.
func unite(a, b []string) []string {
	for _, s := range b {
		if !containsFold(a, s) {
			a = append(a, s)
		}
	}
	return a
}

func containsFold(ss []string, s string) bool {
	for _, t := range ss {
		if strings.EqualFold(s, t) {
			return true
		}
	}
	return false
}
