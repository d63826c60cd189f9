package faultproxy

import "maps"

// Stats counts what a Proxy did, by operation ("PutItem", ...; "" for a
// request without an X-Amz-Target).
type Stats map[string]OpStats

// OpStats counts one operation's requests.
type OpStats struct {
	Forwarded int           // sent on to the target, DropAfterForward's included
	Injected  map[Fault]int // faults injected, by kind; nil when none
}

// Forwarded is the number of requests of any operation sent to the target.
func (s Stats) Forwarded() int {
	n := 0
	for _, o := range s {
		n += o.Forwarded
	}
	return n
}

// Injected is the number of requests of any operation that got fault f.
func (s Stats) Injected(f Fault) int {
	n := 0
	for _, o := range s {
		n += o.Injected[f]
	}
	return n
}

func (s Stats) addForwarded(op string) {
	o := s[op]
	o.Forwarded++
	s[op] = o
}

func (s Stats) addInjected(op string, f Fault) {
	o := s[op]
	if o.Injected == nil {
		o.Injected = make(map[Fault]int)
	}
	o.Injected[f]++
	s[op] = o
}

// clone returns a deep copy, which the caller may keep and change.
func (s Stats) clone() Stats {
	c := make(Stats, len(s))
	for op, o := range s {
		o.Injected = maps.Clone(o.Injected)
		c[op] = o
	}
	return c
}
