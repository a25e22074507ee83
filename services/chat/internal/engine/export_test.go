package engine

// The engine's tests live in package engine_test, since the stores they
// run on (memstore, sqlstore) import this package. These hooks let them
// look at what only the engine can see.

// ForgetAfter is how long an unused room stays in memory.
const ForgetAfter = forgetAfter

// Loaded reports whether code's room is in memory.
func (m *Engine) Loaded(code string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rooms[code] != nil
}

// RoomLocked reports whether code's room is in memory with its lock held,
// by any goroutine (the caller's included: the lock is not reentrant).
func (m *Engine) RoomLocked(code string) bool {
	m.mu.RLock()
	r := m.rooms[code]
	m.mu.RUnlock()
	if r == nil {
		return false
	}
	if r.mu.TryLock() {
		r.mu.Unlock()
		return false
	}
	return true
}

// RoomMemory returns the lengths of code's history ring and client-ID
// index, and false if the room is not in memory.
func (m *Engine) RoomMemory(code string) (history, sent int, ok bool) {
	m.mu.RLock()
	r := m.rooms[code]
	m.mu.RUnlock()
	if r == nil {
		return 0, 0, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.history), len(r.sent), true
}
