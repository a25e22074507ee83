package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Instances that share a Log (and a Registry and Presence) each run an
// engine. A room's messages have one order, the log's: each engine
// sequences its own after the head it knows, the log refuses a run that
// does not follow its head (rooms.ErrSeqConflict), and the refused engine
// catches up with what the others wrote, renumbers its pending messages
// after them and tries again. A feed of the log tells each engine what the
// others appended (Apply), so that its streams see their messages, and
// what they deleted; a feed of the presence table, their members' arrivals
// and departures (Notify).

// catchUpTimeout bounds one read of the log when catching up.
const catchUpTimeout = 10 * time.Second

// Apply takes what another instance appended to the shared log for the
// room with code: msgs, one room's consecutive messages in log order, or,
// when dropped is set, the end of the room's history (it was deleted). A
// feed calls it in log order for every room; rooms not loaded here are
// ignored. It does no I/O: the committer applies it before its next batch.
func (m *Engine) Apply(code string, msgs []rooms.Message, dropped bool) {
	m.commit.addRemote(remote{code: code, msgs: msgs, dropped: dropped})
}

// Notify hands another instance's presence change in the room (an
// EventJoined or EventLeft) to the room's streams here, if it is loaded,
// in the same window as the room's own changes (see presenceLocked).
func (m *Engine) Notify(code string, ev *rooms.Event) {
	if ev == nil || (ev.Kind != rooms.EventJoined && ev.Kind != rooms.EventLeft) {
		return
	}
	m.mu.RLock()
	r := m.rooms[code]
	m.mu.RUnlock()
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted || r.gone {
		return
	}
	m.presenceLocked(r, ev)
}

// addRemote queues what feeds reported and wakes the committer.
func (c *committer) addRemote(rs ...remote) {
	c.mu.Lock()
	c.remote = append(c.remote, rs...)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// apply takes one remote report on the committer's goroutine.
func (c *committer) apply(rm remote) {
	m := c.m
	m.mu.Lock()
	r := m.rooms[rm.code]
	if r == nil {
		// A room being loaded may have read the log before this append:
		// the report waits for the load to end.
		if l := m.loading[rm.code]; l != nil {
			l.early = append(l.early, rm)
		}
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	if rm.dropped {
		// History is dropped when a room is deleted, and also when a new
		// room clears what an old one with its code left: only the first
		// ends the room loaded here.
		ctx, cancel := context.WithTimeout(c.abort, catchUpTimeout)
		defer cancel()
		now, err := m.reg.Room(ctx, rm.code)
		switch {
		case errors.Is(err, rooms.ErrNotFound) || (err == nil && !now.CreatedAt.Equal(r.meta.CreatedAt)):
			r.close(&rooms.Event{Kind: rooms.EventRoomDeleted, At: m.cfg.Now()}, rooms.ErrDeleted)
			m.drop(r)
		case err != nil:
			m.cfg.Report(fmt.Errorf("engine: room %s: history dropped elsewhere, and the registry cannot tell why: %w", rm.code, err))
			m.reset(r)
		}
		return
	}
	r.mu.Lock()
	if r.gone || r.deleted {
		r.mu.Unlock()
		return
	}
	i := 0
	for i < len(rm.msgs) && rm.msgs[i].Seq <= r.delivered {
		i++ // this engine's own, or read while catching up
	}
	msgs := rm.msgs[i:]
	switch {
	case len(msgs) == 0:
		r.mu.Unlock()
	case msgs[0].Seq == r.delivered+1:
		m.applyLocked(r, msgs)
		r.mu.Unlock()
	default:
		// The feed skipped something (it reconnected, or the room loaded
		// meanwhile): read it from the log.
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.abort, catchUpTimeout)
		defer cancel()
		if _, err := c.catchUp(ctx, r); err != nil {
			m.cfg.Report(fmt.Errorf("engine: room %s: catch up with the log: %w", rm.code, err))
			m.reset(r)
		}
	}
}

// catchUp reads what the log holds after the room's delivered head and
// applies it. It reports false, having reset or closed the room, when
// that cannot be done: the log lost messages this room has not delivered
// (it kept fewer than were written meanwhile), or its history ends before
// the room's head (the room was deleted, or the log was emptied).
func (c *committer) catchUp(ctx context.Context, r *room) (bool, error) {
	m, code := c.m, r.meta.Code
	r.mu.Lock()
	after := r.delivered
	r.mu.Unlock()
	msgs, err := m.log.Since(ctx, code, after, 0)
	if err != nil {
		return false, err
	}
	r.mu.Lock()
	if r.gone || r.deleted {
		r.mu.Unlock()
		return false, nil
	}
	i := 0
	for i < len(msgs) && msgs[i].Seq <= r.delivered {
		i++
	}
	msgs = msgs[i:]
	if len(msgs) > 0 && msgs[0].Seq == r.delivered+1 {
		m.applyLocked(r, msgs)
		r.mu.Unlock()
		return true, nil
	}
	r.mu.Unlock()
	if len(msgs) > 0 {
		m.cfg.Report(fmt.Errorf("engine: room %s: the log no longer holds messages %d to %d: %w",
			code, after+1, msgs[0].Seq-1, rooms.ErrSeqConflict))
		m.reset(r)
		return false, nil
	}
	// Nothing after the head: the log's history is shorter than the
	// room's. Deleted elsewhere, most likely.
	if _, err := m.reg.Room(ctx, code); errors.Is(err, rooms.ErrNotFound) {
		r.close(&rooms.Event{Kind: rooms.EventRoomDeleted, At: m.cfg.Now()}, rooms.ErrDeleted)
		m.drop(r)
		return false, nil
	} else if err != nil {
		return false, err
	}
	m.cfg.Report(fmt.Errorf("engine: room %s: the log's history ends before message %d: %w", code, after, rooms.ErrSeqConflict))
	m.reset(r)
	return false, nil
}
