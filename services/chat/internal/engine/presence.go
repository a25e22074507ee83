package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// MemoryPresence is a Presence table in memory, shared by the holders
// made with Holder: one per engine in a process, and the engine's default
// (a single holder) when Config.Presence is nil. It is safe for
// concurrent use.
type MemoryPresence struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	rooms   map[string]*roomPresence // by room code
	renewed map[string]time.Time     // holder → last renewal
}

// forgetLapsed is how many leases a holder may miss before another holder's
// renewal forgets its counts.
const forgetLapsed = 10

// roomPresence is one room's users, by ID and in the order Users lists
// them. The order is kept as users come and go, so that listing a room
// is a walk, not a sort: every stream's Opened lists its room, so a room
// filling up with n users is listed n times, and sorting it each time
// was most of what a 3,000-member join storm cost.
type roomPresence struct {
	byID  map[string]*presence
	order []*presence // by name, then ID
}

// presence is one user's streams in a room, by holder: a slice, since a
// user's streams are held by one holder or a few (one per engine).
type presence struct {
	id, name string
	streams  []held
}

// held is one holder's streams of a user.
type held struct {
	holder string
	n      uint32
}

// byOrder orders users as Users lists them.
func byOrder(a *presence, nameB, idB string) int {
	return cmp.Or(cmp.Compare(a.name, nameB), cmp.Compare(a.id, idB))
}

// NewMemoryPresence returns an empty table whose leases last ttl; now
// replaces time.Now when not nil.
func NewMemoryPresence(ttl time.Duration, now func() time.Time) *MemoryPresence {
	if now == nil {
		now = time.Now
	}
	return &MemoryPresence{ttl: ttl, now: now, rooms: make(map[string]*roomPresence), renewed: make(map[string]time.Time)}
}

// Holder returns the Presence of one holder of the table.
func (p *MemoryPresence) Holder(id string) Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.renewed[id] = p.now()
	return &memoryHolder{p: p, id: id}
}

type memoryHolder struct {
	p  *MemoryPresence
	id string
}

// liveLocked reports whether holder's lease runs at now.
func (p *MemoryPresence) liveLocked(holder string, now time.Time) bool {
	at, ok := p.renewed[holder]
	return ok && now.Sub(at) < p.ttl
}

// countLocked is u's streams under live leases; 0 for no user.
func (p *MemoryPresence) countLocked(u *presence, now time.Time) uint32 {
	if u == nil {
		return 0
	}
	var n uint32
	for _, h := range u.streams {
		if p.liveLocked(h.holder, now) {
			n += h.n
		}
	}
	return n
}

// Join counts the room's members as the users it holds counts of, lapsed
// ones included until they are forgotten (see Renew): one lookup, where
// counting only live ones would cost a walk of the room per join.
func (h *memoryHolder) Join(_ context.Context, room string, m rooms.Member, lim JoinLimits) (bool, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// A join renews the holder's lease: its own counts, even if the lease
	// had lapsed (a late renewal), are its streams still open.
	p.renewed[h.id] = now
	r := p.rooms[room]
	var u *presence
	others := 0
	if r != nil {
		u, others = r.byID[m.ID], len(r.byID)
	}
	n := p.countLocked(u, now)
	if lim.Streams > 0 && int(n) >= lim.Streams {
		return false, fmt.Errorf("%w (%d)", rooms.ErrTooManyStreams, lim.Streams)
	}
	if u != nil {
		others-- // held, but not online: lapsed counts only
	}
	if n == 0 && lim.Members > 0 && others >= lim.Members {
		return false, fmt.Errorf("%w (%d)", rooms.ErrRoomFull, lim.Members)
	}
	if r == nil {
		r = &roomPresence{byID: make(map[string]*presence)}
		p.rooms[room] = r
	}
	if u == nil {
		u = &presence{id: m.ID, name: m.Name}
		r.byID[m.ID] = u
		i, _ := slices.BinarySearchFunc(r.order, u, func(a, b *presence) int { return byOrder(a, b.name, b.id) })
		r.order = slices.Insert(r.order, i, u)
	}
	i := slices.IndexFunc(u.streams, func(s held) bool { return s.holder == h.id })
	if i < 0 {
		u.streams = append(u.streams, held{holder: h.id})
		i = len(u.streams) - 1
	}
	u.streams[i].n++
	return n == 0, nil
}

func (h *memoryHolder) Leave(_ context.Context, room string, m rooms.Member) (bool, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rooms[room]
	if r == nil {
		return false, nil
	}
	u := r.byID[m.ID]
	if u == nil {
		return false, nil
	}
	i := slices.IndexFunc(u.streams, func(s held) bool { return s.holder == h.id })
	if i < 0 {
		return false, nil
	}
	if u.streams[i].n--; u.streams[i].n == 0 {
		u.streams = slices.Delete(u.streams, i, i+1)
	}
	n := p.countLocked(u, p.now())
	if len(u.streams) == 0 {
		r.remove(u)
		if len(r.byID) == 0 {
			delete(p.rooms, room)
		}
	}
	return n == 0, nil
}

// remove forgets u, which holds no streams any more.
func (r *roomPresence) remove(u *presence) {
	delete(r.byID, u.id)
	if i, ok := slices.BinarySearchFunc(r.order, u, func(a, b *presence) int { return byOrder(a, b.name, b.id) }); ok {
		r.order = slices.Delete(r.order, i, i+1)
	}
}

func (h *memoryHolder) Users(_ context.Context, room string) ([]rooms.User, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.rooms[room]
	if r == nil {
		return []rooms.User{}, nil
	}
	// The live holders, read once: a few at most, against one lookup in
	// the lease map per user.
	now := p.now()
	var live []string
	for id := range p.renewed {
		if p.liveLocked(id, now) {
			live = append(live, id)
		}
	}
	out := make([]rooms.User, 0, len(r.order))
	for _, u := range r.order {
		var n uint32
		for _, s := range u.streams {
			if slices.Contains(live, s.holder) {
				n += s.n
			}
		}
		if n > 0 {
			out = append(out, rooms.User{Name: u.name, Streams: n})
		}
	}
	return out, nil
}

func (h *memoryHolder) Renew(context.Context) error {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.renewed[h.id] = now
	// Other holders lapsed for long are forgotten here, so that a crashed
	// one's counts do not stay in memory; one that is merely late comes
	// back with its counts when it renews.
	for id, at := range p.renewed {
		if now.Sub(at) >= forgetLapsed*p.ttl {
			p.dropLocked(id)
			delete(p.renewed, id)
		}
	}
	return nil
}

// dropLocked forgets every count of holder, whose lease has lapsed.
func (p *MemoryPresence) dropLocked(holder string) {
	for room, r := range p.rooms {
		kept := r.order[:0]
		for _, u := range r.order {
			u.streams = slices.DeleteFunc(u.streams, func(s held) bool { return s.holder == holder })
			if len(u.streams) == 0 {
				delete(r.byID, u.id)
			} else {
				kept = append(kept, u)
			}
		}
		clear(r.order[len(kept):])
		r.order = kept
		if len(r.byID) == 0 {
			delete(p.rooms, room)
		}
	}
}
