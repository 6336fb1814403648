package mapping

import (
	"fmt"
	"strings"
)

// suggest returns ` (did you mean "x"?)` for the known key closest to k,
// when it is close enough to be a misspelling.
func suggest[V any](k string, known map[string]V) string {
	best, bestDist := "", 3
	lk := strings.ToLower(k)
	for _, name := range sortedKeys(known) {
		dist := editDistance(lk, name)
		if len(name) >= 4 && (strings.HasPrefix(lk, name) || strings.HasPrefix(name, lk)) {
			dist = min(dist, 2) // listen_on, timeout for timeouts
		}
		if dist < bestDist {
			best, bestDist = name, dist
		}
	}
	if best == "" || bestDist >= len(k) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the Levenshtein distance of two short strings.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
