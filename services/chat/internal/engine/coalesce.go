package engine

import "github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"

// Presence coalescing. Without it a room of n members that fills up (a
// reconnect storm after a restart) queues, encodes and writes n²/2
// presence events, one per arrival per member already there: some 4.5
// million for 3,000 members. With a window (Config.PresenceWindow), a
// room gathers its changes, its own and other instances' (Notify), and
// at the end of the window pushes them to each stream as one
// rooms.EventPresence batch: one queue entry, one wake-up and usually one
// frame per stream per window, whatever the number of changes. Each
// change is still encoded once per format and shared, as every event is;
// a batch is only a list of them.
//
// What a stream sees:
//   - Every change that happened after its Opened, exactly once and in
//     the order the room saw them: a stream opened during a window gets
//     that window's changes after its own Opened (a tail of the shared
//     list, which costs no copy), so neither its own arrival nor one its
//     Opened already listed comes again.
//   - Changes are not netted: a user who joins and leaves within one
//     window appears in the batch as both, in that order. Clients apply
//     a batch in order, as they did single events.
//   - A change reaches streams up to one window after it happened, so a
//     message sent meanwhile may come before it; presence changes are
//     never reordered among themselves, and since a window's batch is
//     pushed to every stream under the room's lock, every stream sees the
//     same interleaving of messages and batches.

// maxPresenceBatch bounds the changes in one batch: a window that gathers
// as many sends them at once (its end sends the rest), so that a frame,
// at some 130 bytes a change at most, stays far below the 4 MiB a gRPC
// client accepts by default, whatever the room size.
const maxPresenceBatch = 1000

// presenceLocked hands a presence change (rooms.EventJoined or
// rooms.EventLeft) to the room's streams: at once without a window, else
// with the other changes of the current window, which it opens if none
// is. Called with the room locked.
func (m *Engine) presenceLocked(r *room, ev *rooms.Event) {
	if len(r.subs) == 0 {
		return // nobody to tell: a later stream's Opened shows the change
	}
	if m.cfg.PresenceWindow <= 0 {
		for _, s := range r.subs {
			s.Push(ev)
		}
		return
	}
	r.changes = append(r.changes, ev)
	switch {
	case len(r.changes) >= maxPresenceBatch:
		r.flushLocked()
	case !r.flushing:
		r.flushing = true
		// Owner: the runtime's timer. The function runs once, a window
		// from now, on a goroutine of its own, and returns after the
		// flush; a room deleted or forgotten meanwhile is left alone.
		m.cfg.AfterFunc(m.cfg.PresenceWindow, func() { r.endWindow() })
	}
}

// openedLocked records that sub opened during the current window, after
// the changes gathered so far, which its Opened shows already.
func (r *room) openedLocked(sub *rooms.Subscription) {
	if len(r.changes) == 0 {
		return // the next window's changes all follow its Opened
	}
	if r.fresh == nil {
		r.fresh = make(map[*rooms.Subscription]int)
	}
	r.fresh[sub] = len(r.changes)
}

// endWindow sends the window's changes.
func (r *room) endWindow() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.flushing = false
	r.flushLocked()
}

// flushLocked pushes the changes gathered to every stream, as one batch
// shared by the streams that were open before they began and as the tail
// each stream opened since has not seen, and starts a new list: the
// batches keep the old one, which must not change.
func (r *room) flushLocked() {
	changes, fresh := r.changes, r.fresh
	r.changes, r.fresh = nil, nil
	if len(changes) == 0 || r.deleted || r.gone {
		return
	}
	all := rooms.NewPresenceBatch(changes)
	for _, s := range r.subs {
		from, late := fresh[s]
		switch {
		case !late:
			s.Push(all)
		case from < len(changes):
			s.Push(rooms.NewPresenceBatch(changes[from:]))
		}
	}
}
