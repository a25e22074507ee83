package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// room is one room's live state.
type room struct {
	meta rooms.Room // immutable after creation

	mu  sync.Mutex
	seq uint64 // sequence of the latest message, 0 if none
	// history is a ring of the last Memory.retain messages: message seq s
	// lives at (s-1) % retain. It grows with the room's messages up to
	// retain, so a quiet room holds only what it has said.
	history []message
	// sent maps (user ID, client message ID) to the sequence of a message
	// still in history. It is kept in step with the ring, so it holds at
	// most HistorySize entries, and a repeat of an evicted ID is new again.
	sent map[sentKey]uint64
	// subs are the room's open streams, in a slice because Publish walks
	// them once per message (a map walk cost 10% of Publish in a profile
	// of 10-member rooms); subIdx finds one for removal.
	subs      []*rooms.Subscription
	subIdx    map[*rooms.Subscription]int
	online    map[string]*presence // by user ID
	deleted   bool
	idleSince time.Time // when the last stream closed or a user joined; creation or the saved time at first
}

// persisted is the room's registry entry, with the time it became idle
// (now, if streams are open: they end with the process), and whether it
// has open streams.
func (r *room) persisted(now time.Time) (rooms.Room, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	meta := r.meta
	meta.IdleSince = r.idleSince.UTC()
	if len(r.subs) > 0 {
		meta.IdleSince = now.UTC()
	}
	return meta, len(r.subs) > 0
}

// idle reports whether the room has had no stream or join for ttl.
func (r *room) idle(now time.Time, ttl time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.deleted && len(r.subs) == 0 && now.Sub(r.idleSince) >= ttl
}

// message is one slot of the history ring.
type message struct {
	ev  wire.Event
	key sentKey // zero when the Send had no client message ID
}

// sentKey identifies a message by its sender's user ID and client ID.
type sentKey struct{ userID, clientID string }

type presence struct {
	name    string
	streams uint32
}

func newRoom(meta rooms.Room, now time.Time) *room {
	return &room{
		meta:      meta,
		subIdx:    make(map[*rooms.Subscription]int),
		online:    make(map[string]*presence),
		idleSince: now,
	}
}

// Subscribe opens a stream for member. Replay snapshot, presence and
// registration happen under the room lock, so the stream sees every message
// after its starting point exactly once.
func (m *Memory) Subscribe(_ context.Context, code string, member rooms.Member, resume *rooms.Resume) (*rooms.Subscription, error) {
	r, err := m.lockLive(code)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	p, ok := r.online[member.ID]
	if ok && m.cfg.MaxStreamsPerUser > 0 && int(p.streams) >= m.cfg.MaxStreamsPerUser {
		return nil, fmt.Errorf("%w (%d)", rooms.ErrTooManyStreams, m.cfg.MaxStreamsPerUser)
	}
	recovery, backlog := rooms.RecoveryNotRequested, []wire.Event(nil)
	if resume != nil {
		recovery = rooms.RecoveryFailed
		if resume.Epoch == m.epoch && resume.After <= r.seq && resume.After+1 >= r.oldestLocked(m.retain) {
			recovery = rooms.RecoveryComplete
			backlog = r.sinceLocked(resume.After, m.retain)
		}
	}
	if !ok {
		// The clock is read under the room lock, so that event times never
		// go backwards against the room's order.
		joined, err := wire.Presence(chatv1.PresenceKind_PRESENCE_KIND_JOINED, member.Name, m.cfg.Now())
		if err != nil {
			return nil, err
		}
		p = &presence{name: member.Name}
		r.online[member.ID] = p
		// Only other users' streams hear of the arrival: the new stream's
		// Opened already lists its own user.
		for _, s := range r.subs {
			s.Push(joined)
		}
	}
	p.streams++
	opened := rooms.Opened{
		Code: r.meta.Code, Name: r.meta.Name, Epoch: m.epoch,
		Head: r.seq, Recovery: recovery, Users: r.usersLocked(),
	}
	var sub *rooms.Subscription
	sub = rooms.NewSubscription(opened, backlog, m.cfg.QueueSize, func() { m.unsubscribe(r, sub, member) })
	r.subIdx[sub] = len(r.subs)
	r.subs = append(r.subs, sub)
	m.dirty.Store(true) // an active room: see tick
	return sub, nil
}

func (m *Memory) unsubscribe(r *room, sub *rooms.Subscription, member rooms.Member) {
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
	if len(r.subs) == 0 {
		r.idleSince = now
		m.dirty.Store(true)
	}
	p := r.online[member.ID]
	if p == nil {
		return
	}
	if p.streams--; p.streams > 0 {
		return
	}
	delete(r.online, member.ID)
	left, err := wire.Presence(chatv1.PresenceKind_PRESENCE_KIND_LEFT, member.Name, now)
	if err != nil {
		return // unreachable in practice: a Presence always encodes
	}
	for _, s := range r.subs {
		s.Push(left)
	}
}

// Publish appends a message to the room and fans it out to every stream,
// the sender's included, and returns its sequence. A repeat of a client
// message ID that the same user gave a message still in history is
// ignored: Publish returns that message's sequence and records nothing.
func (m *Memory) Publish(_ context.Context, code string, sender rooms.Member, clientID, body string) (uint64, error) {
	r, err := m.lockLive(code)
	if err != nil {
		return 0, err
	}
	defer r.mu.Unlock()
	now := m.cfg.Now() // under the lock, so sent_at follows the sequence
	var key sentKey
	if clientID != "" {
		key = sentKey{userID: sender.ID, clientID: clientID}
		if seq, dup := r.sent[key]; dup {
			return seq, nil
		}
	}
	// Encoding under the lock keeps sequence order equal to delivery order;
	// it is one marshal per message for the whole room, not per member.
	ev, err := wire.Message(r.seq+1, m.epoch, now, sender.Name, body, clientID)
	if err != nil {
		return 0, err
	}
	r.seq++
	if r.sent == nil {
		r.sent = make(map[sentKey]uint64)
	}
	i := int((r.seq - 1) % uint64(m.retain))
	if i == len(r.history) { // still growing: seq s is appended at s-1
		r.history = append(r.history, message{})
	}
	slot := &r.history[i]
	if slot.key != (sentKey{}) {
		delete(r.sent, slot.key) // its message leaves history now
	}
	*slot = message{ev: ev, key: key}
	if clientID != "" {
		r.sent[key] = r.seq
	}
	for _, s := range r.subs {
		s.Push(ev)
	}
	return r.seq, nil
}

// oldestLocked is the sequence of the oldest message held, or 1 if none.
func (r *room) oldestLocked(retain int) uint64 {
	if r.seq <= uint64(retain) {
		return 1
	}
	return r.seq - uint64(retain) + 1
}

func (r *room) sinceLocked(after uint64, retain int) []wire.Event {
	if after >= r.seq {
		return nil
	}
	out := make([]wire.Event, 0, r.seq-after)
	for s := after + 1; s <= r.seq; s++ {
		out = append(out, r.history[(s-1)%uint64(retain)].ev)
	}
	return out
}

func (r *room) usersLocked() []rooms.User {
	us := make([]rooms.User, 0, len(r.online))
	for _, p := range r.online {
		us = append(us, rooms.User{Name: p.name, Streams: p.streams})
	}
	sort.Slice(us, func(i, j int) bool { return us[i].Name < us[j].Name })
	return us
}

// close marks the room deleted and ends every stream with last then err.
func (r *room) close(last wire.Event, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.deleted = true
	for _, s := range r.subs {
		s.End(last, err)
	}
}
