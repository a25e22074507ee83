package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// room is one loaded room's live state.
type room struct {
	meta rooms.Room // immutable after loading

	mu sync.Mutex
	// seq is the sequence of the latest message accepted; delivered that
	// of the latest one written to the log and handed to the streams.
	// Messages in between await the committer. floor is the oldest
	// sequence history may hold: the first one loaded from the log.
	seq, delivered, floor uint64
	// history is a ring of the last Engine.retain messages accepted:
	// message s lives at (s-1) % retain. It grows with the room's messages
	// up to retain, so a quiet room holds only what it has said.
	history []*rooms.Event
	// sent maps (user ID, client message ID) to the sequence of a message
	// still in history. It is kept in step with the ring, so it holds at
	// most retain entries, and a repeat of an evicted ID is new again.
	sent map[sentKey]uint64
	// pend are the messages accepted and not yet delivered, sequences
	// delivered+1 to seq in order. Only the committer renumbers them, when
	// another instance sharing the log took their sequences (applyLocked).
	pend []*rooms.Event
	// voided are pending messages that another instance wrote first (a
	// client resent them there): the committer skips them.
	voided map[*rooms.Event]struct{}
	// subs are the room's open streams, in a slice because delivery walks
	// them once per message (a map walk cost 10% of Publish in a profile
	// of 10-member rooms); subIdx finds one for removal.
	subs   []*rooms.Subscription
	subIdx map[*rooms.Subscription]int
	// deleted: the room is gone from the registry; gone: the engine
	// forgot it (it is reloaded from the stores on next use).
	deleted, gone bool
	// idleSince is when the last stream closed, if idleDirty says the
	// registry has not heard of it yet.
	idleSince time.Time
	idleDirty bool
	// usedAt is when a stream or a message last came: rooms unused for a
	// while are forgotten (see evict).
	usedAt time.Time
	// changes are the presence changes of the current window, in order,
	// and fresh the streams opened during it, each with how many of
	// changes its Opened already showed; flushing is set while a window
	// is open. See presenceLocked.
	changes  []*rooms.Event
	fresh    map[*rooms.Subscription]int
	flushing bool
}

// sentKey identifies a message by its sender's user ID and client ID.
type sentKey struct{ userID, clientID string }

// load reads a room and its recent history from the stores.
func (m *Engine) load(ctx context.Context, code string) (*room, error) {
	meta, err := m.reg.Room(ctx, code)
	if err != nil {
		return nil, err
	}
	head, err := m.log.Head(ctx, code)
	if err != nil {
		return nil, err
	}
	from := head - min(head, uint64(m.retain))
	msgs, err := m.log.Since(ctx, code, from, m.retain)
	if err != nil {
		return nil, err
	}
	if n := len(msgs); n > 0 && msgs[n-1].Seq > head {
		// Another instance appended between the two reads: the room
		// starts from what it read last (the feed brings the rest).
		head = msgs[n-1].Seq
	}
	r := &room{meta: meta, seq: head, delivered: head, floor: head + 1, subIdx: make(map[*rooms.Subscription]int), usedAt: m.cfg.Now()}
	if head > uint64(m.retain) {
		r.history = make([]*rooms.Event, m.retain)
	} else {
		r.history = make([]*rooms.Event, head)
	}
	if len(msgs) > 0 {
		// The log may keep fewer than asked; what it returns must run
		// without a gap up to the head.
		r.floor = msgs[0].Seq
	}
	for i, msg := range msgs {
		if msg.Seq <= from || msg.Seq != r.floor+uint64(i) || (i == len(msgs)-1 && msg.Seq != head) {
			return nil, fmt.Errorf("engine: room %s: log returned sequence %d, not a run of (%d, %d]", code, msg.Seq, from, head)
		}
		ev := rooms.NewMessageEvent(msg)
		r.history[(msg.Seq-1)%uint64(m.retain)] = ev
		if msg.ClientID != "" {
			if r.sent == nil {
				r.sent = make(map[sentKey]uint64)
			}
			r.sent[sentKey{msg.SenderID, msg.ClientID}] = msg.Seq
		}
	}
	return r, nil
}

// lockLive returns code's room with its lock held, loading it if needed,
// or rooms.ErrNotFound if the room is unknown or deleted. The caller
// unlocks it.
func (m *Engine) lockLive(ctx context.Context, code string) (*room, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Every message looks its room up: readers share the map lock.
		m.mu.RLock()
		r, fence, loading := m.rooms[code], m.fences[code], m.loading[code]
		m.mu.RUnlock()
		if r == nil {
			switch {
			case fence != nil:
				if err := wait(ctx, fence); err != nil {
					return nil, err
				}
			case loading != nil:
				if err := wait(ctx, loading.done); err != nil {
					return nil, err
				}
				// The loader's answer is everyone's, unless only its own
				// call gave up (then look again).
				if err := loading.err; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
					return nil, err
				}
			default:
				if err := m.loadOnce(ctx, code); err != nil {
					return nil, err
				}
			}
			continue
		}
		r.mu.Lock()
		if r.gone {
			r.mu.Unlock()
			continue // forgotten meanwhile: load it again
		}
		if !r.deleted {
			return r, nil
		}
		r.mu.Unlock()
		// The idle sweep marks a room deleted while the registry decides
		// and unmarks it, before lifting its fence, if the room stays.
		m.mu.RLock()
		fence = m.fences[code]
		m.mu.RUnlock()
		if fence != nil {
			if err := wait(ctx, fence); err != nil {
				return nil, err
			}
			continue
		}
		r.mu.Lock()
		deleted := r.deleted
		r.mu.Unlock()
		if deleted {
			return nil, rooms.ErrNotFound
		}
	}
}

// wait waits for c to be closed or ctx to end.
func wait(ctx context.Context, c <-chan struct{}) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// loading is one caller's load of a room, which the others wait for.
type loading struct {
	done  chan struct{} // closed when the load has ended
	err   error         // the load's error, set before done is closed
	stale bool          // a deletion began meanwhile: the result is not kept; guarded by Engine.mu
	// early are other instances' appends that came while the room was
	// loading: applied once it is loaded. Guarded by Engine.mu.
	early []remote
}

// loadOnce loads code's room into memory unless another caller is loading
// it, it is there already or a deletion holds its fence: then it does
// nothing, and the caller looks again. One caller loads a room at a time,
// so that clients reconnecting together after a restart read its history
// once.
func (m *Engine) loadOnce(ctx context.Context, code string) error {
	m.mu.Lock()
	if m.rooms[code] != nil || m.loading[code] != nil || m.fences[code] != nil {
		m.mu.Unlock()
		return nil
	}
	l := &loading{done: make(chan struct{})}
	m.loading[code] = l
	m.mu.Unlock()
	loaded, err := m.load(ctx, code)
	m.mu.Lock()
	delete(m.loading, code)
	// A deletion that began during the load may have read the room before
	// it was stored here: it must not come back.
	if err == nil && !l.stale {
		m.rooms[code] = loaded
	}
	l.err = err
	early := l.early
	m.mu.Unlock()
	if err == nil && len(early) > 0 {
		m.commit.addRemote(early...)
	}
	close(l.done)
	return err
}

// Subscribe opens a stream for member. The replay or backlog snapshot,
// presence and registration happen under the room lock, so the stream
// sees every message after its starting point exactly once.
func (m *Engine) Subscribe(ctx context.Context, code string, member rooms.Member, open rooms.Open) (*rooms.Subscription, error) {
	r, err := m.lockLive(ctx, code)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	first, err := m.presence.Join(ctx, code, member, JoinLimits{Streams: m.cfg.MaxStreamsPerUser, Members: m.cfg.MaxRoomMembers})
	if err != nil {
		return nil, err
	}
	users, err := m.presence.Users(ctx, code)
	if err != nil {
		_, _ = m.presence.Leave(ctx, code, member)
		return nil, err
	}
	recovery, backlog := m.replayLocked(r, open)
	// The clock is read under the room lock, so that event times never go
	// backwards against the room's order.
	now := m.cfg.Now()
	r.usedAt = now
	if first {
		// Only other users' streams hear of the arrival: the new stream's
		// Opened already lists its own user.
		m.presenceLocked(r, &rooms.Event{Kind: rooms.EventJoined, User: member.Name, At: now})
	}
	opened := rooms.Opened{
		Code: r.meta.Code, Name: r.meta.Name, Epoch: m.log.Epoch(),
		Head: r.delivered, Recovery: recovery, Backlog: len(backlog), Users: users,
	}
	var sub *rooms.Subscription
	sub = rooms.NewSubscription(opened, backlog, m.cfg.QueueSize, func() { m.unsubscribe(r, sub, member) })
	r.subIdx[sub] = len(r.subs)
	r.subs = append(r.subs, sub)
	r.openedLocked(sub)
	return sub, nil
}

// replayLocked decides what a new stream gets before live events:
//   - resuming from a point in this epoch that history still holds, every
//     later message (RecoveryComplete);
//   - resuming from elsewhere, RecoveryFailed and every message of the
//     current epoch still held after the point (all of them if the point
//     is from another epoch), so a client loses only what history lost;
//   - not resuming, the latest open.Backlog messages.
func (m *Engine) replayLocked(r *room, open rooms.Open) (rooms.Recovery, []*rooms.Event) {
	oldest := r.oldestLocked(m.retain)
	res := open.Resume
	switch {
	case res == nil:
		if open.Backlog <= 0 {
			return rooms.RecoveryNotRequested, nil
		}
		return rooms.RecoveryNotRequested, r.spanLocked(r.delivered-min(r.delivered, uint64(open.Backlog)), oldest, m.retain)
	case res.Epoch == m.log.Epoch() && res.After <= r.delivered && res.After+1 >= oldest:
		return rooms.RecoveryComplete, r.spanLocked(res.After, oldest, m.retain)
	case res.Epoch == m.log.Epoch() && res.After <= r.delivered:
		return rooms.RecoveryFailed, r.spanLocked(res.After, oldest, m.retain)
	case res.Epoch == m.log.Epoch():
		return rooms.RecoveryFailed, nil // a point past the head: nothing to give
	default:
		return rooms.RecoveryFailed, r.spanLocked(0, oldest, m.retain)
	}
}

// oldestLocked is the sequence of the oldest message held, or the next
// one if none is.
func (r *room) oldestLocked(retain int) uint64 {
	oldest := uint64(1)
	if r.seq > uint64(retain) {
		oldest = r.seq - uint64(retain) + 1
	}
	return max(oldest, min(r.floor, r.seq+1))
}

// spanLocked returns the delivered messages held after sequence after.
func (r *room) spanLocked(after, oldest uint64, retain int) []*rooms.Event {
	after = max(after, oldest-1)
	if after >= r.delivered {
		return nil
	}
	out := make([]*rooms.Event, 0, r.delivered-after)
	for s := after + 1; s <= r.delivered; s++ {
		out = append(out, r.history[(s-1)%uint64(retain)])
	}
	return out
}

func (m *Engine) unsubscribe(r *room, sub *rooms.Subscription, member rooms.Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i, ok := r.subIdx[sub]
	if !ok {
		return
	}
	now := m.cfg.Now() // under the lock: see Subscribe
	last := len(r.subs) - 1
	r.subs[i] = r.subs[last]
	r.subIdx[r.subs[i]] = i
	r.subs[last] = nil
	r.subs = r.subs[:last]
	delete(r.subIdx, sub)
	delete(r.fresh, sub)
	if len(r.subs) == 0 {
		// The registry hears of it on the next tick.
		r.idleSince, r.idleDirty, r.usedAt = now, true, now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	gone, err := m.presence.Leave(ctx, r.meta.Code, member)
	if err != nil {
		m.cfg.Report(fmt.Errorf("engine: room %s: leave: %w", r.meta.Code, err))
	}
	if gone {
		m.presenceLocked(r, &rooms.Event{Kind: rooms.EventLeft, User: member.Name, At: now})
	}
}

// Publish accepts a message for the room and returns its sequence. The
// message reaches the room's streams, the sender's included, once it is
// in the log (see committer). A repeat of a client message ID that the
// same user gave a message still in history is ignored: Publish returns
// that message's sequence and records nothing. When another instance
// shares the log, its messages may take the sequence first: the message
// then follows them (see applyLocked), and the sequence its delivery
// carries is the one that counts.
func (m *Engine) Publish(ctx context.Context, code string, sender rooms.Member, clientID, body string) (uint64, error) {
	if err := m.commit.admit(ctx); err != nil {
		return 0, err
	}
	r, err := m.lockLive(ctx, code)
	if err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	var key sentKey
	if clientID != "" {
		key = sentKey{userID: sender.ID, clientID: clientID}
		if seq, dup := r.sent[key]; dup {
			return seq, nil
		}
	}
	now := m.cfg.Now() // under the lock, so sent_at follows the sequence
	r.usedAt = now
	ev := rooms.NewMessageEvent(rooms.Message{
		Room: r.meta.Code, Seq: r.seq + 1, Epoch: m.log.Epoch(), SentAt: now.UTC().Truncate(time.Microsecond),
		SenderID: sender.ID, Sender: sender.Name, Body: body, ClientID: clientID,
	})
	// Queued under the room lock, so that the log receives a room's
	// messages in sequence order.
	if err := m.commit.add(r, ev); err != nil {
		return 0, err
	}
	r.seq++
	r.pend = append(r.pend, ev)
	m.placeLocked(r, ev)
	return r.seq, nil
}

// placeLocked puts ev, the room's latest message, in history and its
// client ID in sent, evicting the message it replaces in the ring.
func (m *Engine) placeLocked(r *room, ev *rooms.Event) {
	seq := ev.Message.Seq
	i := int((seq - 1) % uint64(m.retain))
	if i == len(r.history) { // still growing: seq s is appended at s-1
		r.history = append(r.history, nil)
	}
	if old := r.history[i]; old != nil {
		r.unsendLocked(old) // it leaves history now
	}
	r.history[i] = ev
	if id := ev.Message.ClientID; id != "" {
		if r.sent == nil {
			r.sent = make(map[sentKey]uint64)
		}
		r.sent[sentKey{ev.Message.SenderID, id}] = seq
	}
}

// unsendLocked forgets ev's client ID if sent maps it to ev.
func (r *room) unsendLocked(ev *rooms.Event) {
	if ev.Message.ClientID == "" {
		return
	}
	key := sentKey{ev.Message.SenderID, ev.Message.ClientID}
	if r.sent[key] == ev.Message.Seq {
		delete(r.sent, key)
	}
}

// deliverLocked hands messages that are now in the log to the room's
// streams. Called by the committer with the room locked.
func (r *room) deliverLocked(evs []pending) {
	for _, p := range evs {
		if _, void := r.voided[p.ev]; void {
			delete(r.voided, p.ev)
			continue
		}
		if r.deleted || r.gone || p.ev.Message.Seq <= r.delivered {
			continue
		}
		r.delivered = p.ev.Message.Seq
		for _, s := range r.subs {
			s.Push(p.ev)
		}
	}
	r.popLocked()
}

// popLocked drops delivered messages from the front of pend.
func (r *room) popLocked() {
	n := 0
	for n < len(r.pend) && r.pend[n].Message.Seq <= r.delivered {
		n++
	}
	if n == 0 {
		return
	}
	// Moved down rather than resliced, so the slice keeps its capacity
	// and a busy room's Publish does not reallocate it.
	k := copy(r.pend, r.pend[n:])
	clear(r.pend[k:])
	r.pend = r.pend[:k]
}

// applyLocked delivers msgs, which another instance appended to the log
// right after this room's delivered head (msgs[0].Seq is delivered+1, or
// earlier messages are skipped), and moves this instance's pending
// messages after them: each takes the next sequence, unless its client ID
// shows that another instance wrote it already (the client resent it
// there), and then it is voided. Called by the committer, the only one
// that renumbers pending messages, with the room locked.
func (m *Engine) applyLocked(r *room, msgs []rooms.Message) {
	// The pending messages leave history: the log's take their places.
	for _, ev := range r.pend {
		r.unsendLocked(ev)
		if i := (ev.Message.Seq - 1) % uint64(m.retain); i < uint64(len(r.history)) && r.history[i] == ev {
			r.history[i] = nil
		}
	}
	var last time.Time
	for _, msg := range msgs {
		if msg.Seq != r.delivered+1 {
			continue // delivered already
		}
		ev := rooms.NewMessageEvent(msg)
		m.placeLocked(r, ev)
		r.delivered = msg.Seq
		last = msg.SentAt
		for _, s := range r.subs {
			s.Push(ev)
		}
	}
	r.seq = r.delivered
	kept := r.pend[:0]
	for _, ev := range r.pend {
		if id := ev.Message.ClientID; id != "" {
			if _, dup := r.sent[sentKey{ev.Message.SenderID, id}]; dup {
				if r.voided == nil {
					r.voided = make(map[*rooms.Event]struct{})
				}
				r.voided[ev] = struct{}{}
				continue
			}
		}
		r.seq++
		ev.Message.Seq = r.seq
		if ev.Message.SentAt.Before(last) { // sent_at follows the sequence
			ev.Message.SentAt, ev.At = last, last
		}
		m.placeLocked(r, ev)
		kept = append(kept, ev)
	}
	clear(r.pend[len(kept):])
	r.pend = kept
	r.usedAt = m.cfg.Now()
}

// close marks the room deleted and ends every stream with last then err.
func (r *room) close(last *rooms.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = true
	for _, s := range r.subs {
		s.End(last, err)
	}
}
