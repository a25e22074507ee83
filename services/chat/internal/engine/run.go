package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// forgetAfter is how long a loaded room with no stream and no message
// stays in memory; it is loaded again from the stores on next use.
const forgetAfter = 5 * time.Minute

// Run does the engine's periodic work until ctx ends: it records the idle
// times of rooms in the registry, deletes idle rooms and forgets unused
// ones. The caller owns the goroutine that runs it; it returns when ctx is
// done. Failures go to Config.Report and are retried on the next tick.
func (m *Engine) Run(ctx context.Context) error {
	renewed := make(chan struct{})
	// Owner: Run, which waits for it. Exit: when ctx ends. Presence
	// leases are renewed apart from the database work below, which a slow
	// database can hold up for longer than a lease.
	go func() {
		defer close(renewed)
		m.renew(ctx)
	}()
	defer func() { <-renewed }()
	every := min(max(m.cfg.IdleTTL/4, time.Second), time.Minute, 10*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.Tick(ctx); err != nil {
				m.cfg.Report(err)
			}
		}
	}
}

// renew renews the engine's presence leases three times per lease until
// ctx ends.
func (m *Engine) renew(ctx context.Context) {
	t := time.NewTicker(m.cfg.PresenceTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, m.cfg.PresenceTTL/3)
			if err := m.presence.Renew(rctx); err != nil {
				m.cfg.Report(fmt.Errorf("engine: renew presence: %w", err))
			}
			cancel()
		}
	}
}

// Tick does one round of Run's periodic work: presence leases (renewed
// on their own schedule too), idle times, the idle sweep, forgetting.
func (m *Engine) Tick(ctx context.Context) error {
	err := m.presence.Renew(ctx)
	if terr := m.touchActive(ctx); terr != nil {
		err = errors.Join(err, terr)
	}
	if _, serr := m.SweepIdle(ctx); serr != nil {
		err = errors.Join(err, serr)
	}
	m.forget()
	return err
}

// loaded returns the rooms in memory.
func (m *Engine) loaded() []*room {
	m.mu.RLock()
	defer m.mu.RUnlock()
	all := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		all = append(all, r)
	}
	return all
}

// touchActive moves the registry's idle time of every room with open
// streams to now, and of every room whose last stream has closed since to
// when it closed, so that after a crash a room's idle clock is at most
// one tick behind.
func (m *Engine) touchActive(ctx context.Context) error {
	now := m.cfg.Now().UTC()
	var errs []error
	for _, r := range m.loaded() {
		r.mu.Lock()
		at, touch := now, len(r.subs) > 0 && !r.deleted
		if !touch && r.idleDirty && !r.deleted {
			at, touch = r.idleSince.UTC(), true
		}
		r.idleDirty = false
		r.mu.Unlock()
		if !touch {
			continue
		}
		if err := m.reg.Touch(ctx, r.meta.Code, at); err != nil && !errors.Is(err, rooms.ErrNotFound) {
			r.mu.Lock()
			r.idleDirty = len(r.subs) == 0 // try again next tick
			r.mu.Unlock()
			errs = append(errs, fmt.Errorf("engine: record idle time of %s: %w", r.meta.Code, err))
		}
	}
	return errors.Join(errs...)
}

// SweepIdle deletes rooms that have had no open stream and no join for
// IdleTTL and returns how many it deleted.
func (m *Engine) SweepIdle(ctx context.Context) (int, error) {
	if m.cfg.IdleTTL <= 0 {
		return 0, nil
	}
	now := m.cfg.Now().UTC()
	before := now.Add(-m.cfg.IdleTTL)
	codes, err := m.reg.Idle(ctx, before)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, code := range codes {
		ok, err := m.sweep(ctx, code, before, now)
		if err != nil {
			errs = append(errs, err)
		} else if ok {
			n++
		}
	}
	return n, errors.Join(errs...)
}

// sweep deletes one idle room unless a stream is open in it.
func (m *Engine) sweep(ctx context.Context, code string, before, now time.Time) (bool, error) {
	r, unfence, err := m.fence(ctx, code)
	if err != nil {
		return false, err
	}
	defer unfence()
	if r != nil {
		// Marked deleted while the registry decides, so that no stream
		// opens in a room that is about to go; undone if it stays.
		r.mu.Lock()
		busy := len(r.subs) > 0 || r.idleDirty || r.deleted || r.seq != r.delivered
		if !busy {
			r.deleted = true
		}
		r.mu.Unlock()
		if busy {
			return false, nil // the registry hears of it on the next touch
		}
	}
	ok, err := m.reg.DeleteIdle(ctx, code, before, now)
	if err != nil || !ok {
		if r != nil {
			r.mu.Lock()
			r.deleted = false
			r.mu.Unlock()
		}
		return false, err
	}
	m.retire(ctx, code, r, now)
	return true, nil
}

// forget drops loaded rooms that have had no stream and no message for
// forgetAfter and whose messages are all in the log, so memory follows the
// rooms in use rather than every room ever used.
func (m *Engine) forget() {
	cutoff := m.cfg.Now().Add(-forgetAfter)
	for _, r := range m.loaded() {
		r.mu.Lock()
		unused := len(r.subs) == 0 && !r.idleDirty && r.seq == r.delivered && r.usedAt.Before(cutoff)
		if unused {
			r.gone = true
		}
		r.mu.Unlock()
		if unused {
			m.drop(r)
		}
	}
}

// reset forgets a room whose state no longer matches the log, ending its
// streams with rooms.ErrUnavailable: clients reconnect, resume from the
// log and resend what was not confirmed.
func (m *Engine) reset(r *room) {
	r.mu.Lock()
	r.gone = true
	for _, s := range r.subs {
		s.End(nil, rooms.ErrUnavailable)
	}
	r.mu.Unlock()
	m.drop(r)
}

func (m *Engine) drop(r *room) {
	m.mu.Lock()
	if m.rooms[r.meta.Code] == r {
		delete(m.rooms, r.meta.Code)
	}
	m.mu.Unlock()
}
