// Package contract holds one test suite per engine seam (engine.Registry,
// engine.Log). Every implementation runs the suite of the seams it offers
// from its own tests, so that the in-memory and SQL stores, and any store
// added later, behave alike where the engine can tell.
//
// The suites check the rules written in engine/seams.go, and nothing an
// implementation may choose for itself (such as how many messages beyond
// Retain a log keeps).
package contract

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// t0 is the suites' clock origin, to the microsecond in UTC: the finest
// time every store keeps exactly, so that a round trip can be compared
// with Equal.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

// ctx bounds one case, so that a store that hangs fails the case rather
// than the whole test binary's deadline.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// outcomes tallies the results of calls made concurrently.
type outcomes struct {
	mu     sync.Mutex
	ok     int
	want   int // failures with the expected sentinel
	others []error
}

// race runs f n times at once, counting nil errors as ok and errors that
// are sentinel as want; anything else is kept to be reported.
func race(n int, sentinel error, f func(i int) error) *outcomes {
	var (
		o     outcomes
		wg    sync.WaitGroup
		start = make(chan struct{})
	)
	for i := range n {
		wg.Add(1)
		go func() { // ends after one call of f
			defer wg.Done()
			<-start
			err := f(i)
			o.mu.Lock()
			defer o.mu.Unlock()
			switch {
			case err == nil:
				o.ok++
			case errors.Is(err, sentinel):
				o.want++
			default:
				o.others = append(o.others, fmt.Errorf("call %d: %w", i, err))
			}
		}()
	}
	close(start) // release them together, to make the calls overlap
	wg.Wait()
	return &o
}
