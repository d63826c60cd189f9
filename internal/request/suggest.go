package request

import (
	"fmt"
	"slices"
	"strings"
)

// This file holds the messages for unknown members: a "did you mean" for a
// near miss (suggest) and a hint for a member put one level off.

// unknownAt reports a member that the shape of the object at path does not
// have, with a suggestion when the name is close to one it has (see suggest).
func (d *decoder) unknownAt(path *jpath, name string, known []string) {
	d.unknownHinted(path, name, known, nil)
}

// unknownHinted is unknownAt for a shape with members that are often put
// one level off (an entry's Name at the top level, DryRun in an entry): a
// name in elsewhere gets that hint instead of a suggestion.
func (d *decoder) unknownHinted(path *jpath, name string, known []string, elsewhere map[string]string) {
	p := path.member(name)
	if len(d.problems.list) >= maxFieldErrors {
		d.failAt(&p, "unknown member") // only counted: no suggestion to compute
		return
	}
	if hint, ok := elsewhere[name]; ok {
		d.failAt(&p, "unknown member here; %s", hint)
		return
	}
	d.failAt(&p, "%s", unknownMessage(name, known))
}

// Hints for members put one level off.
var (
	// topLevelElsewhere: a bare entry sent as the request.
	topLevelElsewhere = func() map[string]string {
		m := map[string]string{}
		for _, name := range entryMembers {
			if !slices.Contains(topLevelMembers, name) {
				m[name] = name + ` is a member of an entry: send {"Entries": [{…}]}, or {"Association": {…}, "InstanceIds": […]} for a fan-out request`
			}
		}
		return m
	}()
	// entryElsewhere: request members written inside an entry or the
	// fan-out template.
	entryElsewhere = func() map[string]string {
		m := map[string]string{}
		for _, name := range topLevelMembers {
			m[name] = name + " is a member of the request, next to Entries or Association, not of an entry"
		}
		m["InstanceIds"] = `InstanceIds is a member of a fan-out request, next to Association; an entry names its nodes with InstanceId, or with Targets [{"Key": "InstanceIds", "Values": […]}]`
		return m
	}()
)

// unknownMessage says that name is not a member, and which one was probably
// meant: "unknown member; member names are case-sensitive, did you mean
// \"InstanceId\"?" for a name that differs in case only, "unknown member; did
// you mean \"Name\"?" for a near miss ("Nmae").
func unknownMessage(name string, known []string) string {
	best, caseOnly := suggest(name, known)
	switch {
	case best == "":
		return "unknown member"
	case caseOnly:
		return fmt.Sprintf("unknown member; member names are case-sensitive, did you mean %q?", best)
	}
	return fmt.Sprintf("unknown member; did you mean %q?", best)
}

// maxSuggestLen bounds the names suggest compares: the longest member name
// of any shape has 32 characters, and a hostile 5 MB name must cost nothing.
const maxSuggestLen = 64

// suggest returns the member of known that name most probably meant: one
// equal but for case (caseOnly), else the closest within a small edit
// distance, ignoring case — one edit for names of up to 4 characters, two up
// to 10, three beyond — or "" when none is that close. Ties go to the first
// in known. Each comparison is a 33×33 table at most, and only names within
// the distance in length are compared.
func suggest(name string, known []string) (best string, caseOnly bool) {
	if name == "" || len(name) > maxSuggestLen {
		return "", false
	}
	for _, k := range known {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	lower := []rune(strings.ToLower(name))
	limit := 3
	switch n := len(lower); {
	case n <= 4:
		limit = 1
	case n <= 10:
		limit = 2
	}
	bestDist := limit + 1
	for _, k := range known {
		kl := []rune(strings.ToLower(k))
		if diff := len(kl) - len(lower); diff > limit || -diff > limit {
			continue
		}
		if dist := editDistance(lower, kl); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	return best, false
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and transpositions of two adjacent
// characters ("Nmae" is one edit from "name") each count one.
func editDistance(a, b []rune) int {
	// Three rows of the table: two back (for transpositions), previous, current.
	prev2 := make([]int, len(b)+1)
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
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
