// Package enginetest holds test doubles for the engine's configuration,
// shared by the tests of the engine and of the transports above it.
package enginetest

import (
	"sync"
	"time"
)

// Windows stands in for time.AfterFunc (engine.Config.AfterFunc): it keeps
// the functions that end presence windows, so that a test ends them when
// it likes instead of when the clock says. The zero value is ready to use
// and safe for concurrent use.
type Windows struct {
	mu sync.Mutex
	fs []func()
}

// After keeps f until End; the duration is ignored. It fits
// engine.Config.AfterFunc.
func (w *Windows) After(_ time.Duration, f func()) {
	w.mu.Lock()
	w.fs = append(w.fs, f)
	w.mu.Unlock()
}

// End ends every open window and reports how many there were. The
// functions run outside the lock, so a window they open is kept for the
// next End.
func (w *Windows) End() int {
	w.mu.Lock()
	fs := w.fs
	w.fs = nil
	w.mu.Unlock()
	for _, f := range fs {
		f()
	}
	return len(fs)
}
