package natsstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// PresenceConfig configures a Presence table; the zero values of the
// optional fields are the defaults.
type PresenceConfig struct {
	// TTL is the holders' lease: the counts of a holder that has not
	// renewed within TTL no longer count. Required.
	TTL time.Duration
	// ForgetAfter is how long after its last renewal a holder's counts
	// are removed from the rooms by another holder's Renew, which then
	// announces the departure of the users left without a stream; at
	// least TTL, and TTL when 0.
	ForgetAfter time.Duration
	// Now replaces time.Now.
	Now func() time.Time
	// Bucket holds one key per room with users; "chat_presence".
	Bucket string
	// HoldersBucket holds one key per holder, its last renewal;
	// "chat_presence_holders".
	HoldersBucket string
	// Subject is the prefix of the rooms' presence event subjects,
	// <Subject>.<room>; "chat.presence".
	Subject string
	// Replicas and Storage of both buckets; 0 replicas means 1, and the
	// zero Storage is file storage.
	Replicas int
	Storage  jetstream.StorageType
}

// Presence is a presence table on NATS JetStream, shared by every instance
// that connects to the same buckets; each instance counts its streams as
// one holder (Holder).
//
// A room's users are one key of Bucket, in JSON: per user, the name and
// the streams each holder counts (some 50 bytes a user, so a room holds
// tens of thousands within NATS's default 1 MB payload). Every change is a
// compare-and-set on that key, so Join checks the stream limit across
// holders atomically with its count, and Users reads one key. A room
// without users has no key.
//
// Each holder's lease is its last renewal time by the injected clock, in
// HoldersBucket; a holder's counts count while now − renewal < TTL. So the
// members of a crashed instance stay listed for at most TTL after its last
// renewal: with the engine renewing three times per lease, between 2/3 TTL
// and TTL after the crash (20–30 s with the default 30 s TTL). Once
// ForgetAfter has passed since that renewal, the next Renew of any
// surviving instance (within TTL/3 on the engine's schedule) removes the
// crashed holder's counts from the rooms and publishes a Left event for
// each user left without a stream, to every instance: with the default
// ForgetAfter of one TTL, at most 4/3 TTL (40 s) after the crash. Unlike
// MemoryPresence, which keeps a lapsed holder's counts for ten leases in
// case it comes back, this table can forget them as soon as they stop
// counting, because a holder that comes back restores its own.
//
// A holder that comes back after its counts were removed (its NATS was
// unreachable for a while) re-asserts them from a mirror of its own Join
// and Leave calls at its next Renew, which publishes Joined events for the
// users who reappear; the same mirror settles a room whose count a failed
// call left in doubt.
//
// Join and Leave announce a user's first and last stream in a room on the
// core NATS subject <Subject>.<room>, for the other instances' Watch.
// Around failures a user may get a repeated Joined or Left: the events
// are announcements, not a ledger.
type Presence struct {
	cfg     PresenceConfig
	nc      *nats.Conn
	rooms   jetstream.KeyValue
	holders jetstream.KeyValue

	mu     sync.Mutex
	leases map[string]lease // holder ID → its lease as last read
	// scan is set when a room held counts of a holder without a record:
	// the next Renew looks through all rooms and removes them.
	scan bool
}

// lease is what a table knows of a holder's lease.
type lease struct {
	renewed   time.Time // zero: the holder has no record
	forgotten bool      // another holder is removing its counts
	rev       uint64    // of the record it was read from
	read      time.Time // when it was read, by the injected clock
}

func (l lease) live(now time.Time, ttl time.Duration) bool {
	return !l.renewed.IsZero() && !l.forgotten && now.Sub(l.renewed) < ttl
}

// holderRecord is a holder's key in HoldersBucket.
type holderRecord struct {
	ID      string `json:"i"`
	Renewed int64  `json:"r"` // unix ns, by the holder's clock
	// Forgotten is set by the holder that removes this one's counts;
	// seeing it, the holder knows to re-assert them.
	Forgotten bool `json:"f,omitempty"`
}

// roomValue is a room's key.
type roomValue struct {
	Users roomUsers `json:"u"`
	// Leases has, for each holder with counts here, the revision of its
	// record when it last wrote them: a reader whose copy of the lease is
	// older reads it again, so that a holder that comes back (and
	// re-asserts its counts) counts again at once.
	Leases map[string]uint64 `json:"l,omitempty"`
}

// roomUsers is a room's users by ID.
type roomUsers map[string]*roomUser

type roomUser struct {
	Name    string            `json:"n"`
	Streams map[string]uint32 `json:"s"` // holder ID → streams
}

// presenceEvent is what a presence subject carries.
type presenceEvent struct {
	Left bool   `json:"l,omitempty"` // false: joined
	User string `json:"u"`
	At   int64  `json:"t"` // unix ns
	// Origin is the holder whose Join or Leave it announces; its own
	// streams heard of it already. Empty when a Renew announces it after
	// removing or restoring counts: then every instance delivers it.
	Origin string `json:"o,omitempty"`
}

// presenceToken is what a room code or holder key may be: a single token
// both as a KV key and in a subject.
var presenceToken = regexp.MustCompile(`^[-_A-Za-z0-9]+$`)

// NewPresence creates the table's buckets unless they exist (updating
// their settings if they changed) and returns the table.
func NewPresence(ctx context.Context, js jetstream.JetStream, cfg PresenceConfig) (*Presence, error) {
	if cfg.TTL <= 0 {
		return nil, errors.New("natsstore: presence TTL must be positive")
	}
	if cfg.ForgetAfter == 0 {
		cfg.ForgetAfter = cfg.TTL
	}
	if cfg.ForgetAfter < cfg.TTL {
		return nil, errors.New("natsstore: presence ForgetAfter must be at least the TTL")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Bucket = cmp.Or(cfg.Bucket, "chat_presence")
	cfg.HoldersBucket = cmp.Or(cfg.HoldersBucket, "chat_presence_holders")
	cfg.Subject = cmp.Or(cfg.Subject, "chat.presence")
	for tok := range strings.SplitSeq(cfg.Subject, ".") {
		if !presenceToken.MatchString(tok) {
			return nil, fmt.Errorf("natsstore: presence subject %q: tokens of letters, digits, - and _ only", cfg.Subject)
		}
	}
	p := &Presence{cfg: cfg, nc: js.Conn(), leases: make(map[string]lease)}
	for _, b := range []struct {
		kv          *jetstream.KeyValue
		name, about string
	}{{&p.rooms, cfg.Bucket, "grpcchatter: users per room"}, {&p.holders, cfg.HoldersBucket, "grpcchatter: presence leases"}} {
		kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: b.name, Description: b.about, History: 1,
			Replicas: cfg.Replicas, Storage: cfg.Storage, LimitMarkerTTL: kvMarkerTTL,
		})
		if err != nil {
			return nil, kvFailed("presence bucket "+b.name, err)
		}
		*b.kv = kv
	}
	return p, nil
}

// Holder returns the presence of one holder of the table: one per
// instance, under an ID that is not empty and no other instance uses. A
// holder's lease starts with its first Join or Renew.
func (p *Presence) Holder(id string) *PresenceHolder {
	return &PresenceHolder{
		p: p, id: id, key: holderKey(id),
		dirty: make(map[string]bool), busy: make(map[string]int), mirror: make(map[string]map[string]*mirrored),
	}
}

// PresenceHolder is one holder's engine.Presence on a Presence table.
type PresenceHolder struct {
	p   *Presence
	id  string
	key string // in HoldersBucket

	mu      sync.Mutex
	rev     uint64    // of the holder's record as last written; 0: none yet
	renewed time.Time // the renewal time written then
	// reassert asks the next Renew to re-assert this holder's counts in
	// the rooms of its mirror, and scan in every room of the table.
	reassert, scan bool
	// dirty are the rooms where a failed call left this holder's count in
	// doubt: the next Renew re-asserts them.
	dirty map[string]bool
	busy  map[string]int // room → Join and Leave calls under way
	// mirror is this holder's own counts, room → user ID, as its Join and
	// Leave calls made them.
	mirror map[string]map[string]*mirrored
}

type mirrored struct {
	name    string
	streams uint32
}

// Join counts one more stream of m in the room; see engine.Presence. A
// first stream is announced to the other holders' Watch. The room's
// members are counted exactly, as the users with a stream under a live
// lease in the room's key, which the compare-and-set makes atomic with
// the count across instances.
func (h *PresenceHolder) Join(ctx context.Context, room string, m rooms.Member, lim engine.JoinLimits) (bool, error) {
	if err := checkRoom(room); err != nil {
		return false, err
	}
	now := h.p.cfg.Now()
	if err := h.ensureLease(ctx, now); err != nil {
		return false, err
	}
	h.begin(room)
	var first bool
	err := h.updateRoom(ctx, room, now, func(v roomValue, live map[string]bool) (bool, error) {
		u := v.Users[m.ID]
		n := u.count(live)
		if lim.Streams > 0 && int(n) >= lim.Streams {
			return false, fmt.Errorf("%w (%d)", rooms.ErrTooManyStreams, lim.Streams)
		}
		if n == 0 && lim.Members > 0 && v.Users.online(live) >= lim.Members {
			return false, fmt.Errorf("%w (%d)", rooms.ErrRoomFull, lim.Members)
		}
		if u == nil {
			u = &roomUser{Streams: make(map[string]uint32)}
			v.Users[m.ID] = u
		}
		u.Name = m.Name
		u.Streams[h.id]++
		first = n == 0
		return true, nil
	})
	h.end(room, m, 1, err)
	if err != nil {
		return false, err
	}
	if first {
		h.p.publish(room, presenceEvent{User: m.Name, At: now.UnixNano(), Origin: h.id})
	}
	return first, nil
}

// Leave uncounts one of this holder's streams of m; see engine.Presence.
// A last stream is announced to the other holders' Watch.
func (h *PresenceHolder) Leave(ctx context.Context, room string, m rooms.Member) (bool, error) {
	if err := checkRoom(room); err != nil {
		return false, err
	}
	now := h.p.cfg.Now()
	h.begin(room)
	var last bool
	err := h.updateRoom(ctx, room, now, func(v roomValue, live map[string]bool) (bool, error) {
		last = false
		u := v.Users[m.ID]
		if u == nil || u.Streams[h.id] == 0 {
			return false, nil
		}
		if u.Streams[h.id]--; u.Streams[h.id] == 0 {
			delete(u.Streams, h.id)
		}
		if len(u.Streams) == 0 {
			delete(v.Users, m.ID)
		}
		last = u.count(live) == 0
		return true, nil
	})
	h.end(room, m, -1, err)
	if err != nil {
		return false, err
	}
	if last {
		h.p.publish(room, presenceEvent{Left: true, User: m.Name, At: now.UnixNano(), Origin: h.id})
	}
	return last, nil
}

// Users lists the room's users with a stream under a live lease.
func (h *PresenceHolder) Users(ctx context.Context, room string) ([]rooms.User, error) {
	if err := checkRoom(room); err != nil {
		return nil, err
	}
	now := h.p.cfg.Now()
	b, _, err := kvRead(ctx, h.p.rooms, room)
	if err != nil {
		return nil, err
	}
	v, err := decodeRoom(room, b)
	if err != nil {
		return nil, err
	}
	live, err := h.p.live(ctx, v, now, h.id)
	if err != nil {
		return nil, err
	}
	out := make([]rooms.User, 0, len(v.Users))
	for _, u := range v.Users {
		if n := u.count(live); n > 0 {
			out = append(out, rooms.User{Name: u.Name, Streams: n})
		}
	}
	slices.SortFunc(out, func(a, b rooms.User) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Streams, b.Streams))
	})
	return out, nil
}

// Renew extends this holder's lease, then does the table's upkeep: it
// removes the counts of holders gone for ForgetAfter (announcing their
// users' departures), and re-asserts this holder's own counts where
// they were removed or a failed call left them in doubt.
func (h *PresenceHolder) Renew(ctx context.Context) error {
	now := h.p.cfg.Now()
	if err := h.renewLease(ctx, now); err != nil {
		return err
	}
	gone, err := h.p.refreshLeases(ctx, now, h.id)
	if err != nil {
		return err
	}
	return errors.Join(h.forget(ctx, gone, now), h.reassertRooms(ctx, now))
}

// Watch subscribes to every room's presence events and calls fn with those
// that another holder announced, and those that a Renew announced after
// removing or restoring counts, until ctx ends. It returns once the server
// has the subscription.
//
// fn runs on the subscription's delivery goroutine, owned by nats.go,
// one event at a time in the order of arrival; the goroutine exits when
// ctx ends (Watch unsubscribes then) or the connection closes. An event
// published while this instance is disconnected from NATS is lost.
func (h *PresenceHolder) Watch(ctx context.Context, fn func(room string, ev *rooms.Event)) error {
	prefix := h.p.cfg.Subject + "."
	sub, err := h.p.nc.Subscribe(prefix+">", func(msg *nats.Msg) {
		var e presenceEvent
		if ctx.Err() != nil || json.Unmarshal(msg.Data, &e) != nil || e.Origin == h.id {
			return
		}
		ev := &rooms.Event{Kind: rooms.EventJoined, User: e.User, At: time.Unix(0, e.At).UTC()}
		if e.Left {
			ev.Kind = rooms.EventLeft
		}
		fn(strings.TrimPrefix(msg.Subject, prefix), ev)
	})
	if err != nil {
		return kvFailed("watch presence", err)
	}
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := h.p.nc.FlushWithContext(fctx); err != nil {
		_ = sub.Unsubscribe()
		return kvFailed("watch presence", err)
	}
	context.AfterFunc(ctx, func() { _ = sub.Unsubscribe() })
	return nil
}

// begin and end bracket a Join or Leave for the mirror: a re-assertion
// leaves a room alone while a call is under way there. A Leave's stream is
// gone even when the call failed; a failed call leaves the room's count
// in doubt until the next Renew re-asserts it.
func (h *PresenceHolder) begin(room string) {
	h.mu.Lock()
	h.busy[room]++
	h.mu.Unlock()
}

func (h *PresenceHolder) end(room string, m rooms.Member, delta int, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.busy[room]--; h.busy[room] == 0 {
		delete(h.busy, room)
	}
	// A refusal counted nothing and leaves nothing in doubt.
	if err != nil && !errors.Is(err, rooms.ErrTooManyStreams) && !errors.Is(err, rooms.ErrRoomFull) {
		h.dirty[room] = true
	}
	if err != nil && delta > 0 {
		return
	}
	users := h.mirror[room]
	u := users[m.ID]
	switch {
	case delta > 0 && u == nil:
		if users == nil {
			users = make(map[string]*mirrored)
			h.mirror[room] = users
		}
		users[m.ID] = &mirrored{name: m.Name, streams: 1}
	case delta > 0:
		u.name = m.Name
		u.streams++
	case u != nil:
		if u.streams--; u.streams == 0 {
			delete(users, m.ID)
			if len(users) == 0 {
				delete(h.mirror, room)
			}
		}
	}
}

// ensureLease renews a lease that has lapsed or not begun, as a Join
// must count this holder's own streams.
func (h *PresenceHolder) ensureLease(ctx context.Context, now time.Time) error {
	h.mu.Lock()
	ok := h.rev != 0 && now.Sub(h.renewed) < h.p.cfg.TTL
	h.mu.Unlock()
	if ok {
		return nil
	}
	return h.renewLease(ctx, now)
}

// renewLease writes this holder's renewal time at now. Its record changes
// under it only when another holder marked it forgotten or deleted it
// (this holder's counts are being or were removed: they are re-asserted),
// when a previous process under the same ID left it (its counts are
// replaced in every room), or when this holder renews twice at once.
func (h *PresenceHolder) renewLease(ctx context.Context, now time.Time) error {
	rec, err := json.Marshal(holderRecord{ID: h.id, Renewed: now.UnixNano()})
	if err != nil {
		return err
	}
	for range kvAttempts {
		h.mu.Lock()
		rev := h.rev
		h.mu.Unlock()
		newRev, err := kvWrite(ctx, h.p.holders, h.key, rec, rev)
		if err == nil {
			h.mu.Lock()
			if newRev > h.rev {
				// After a lapse, the other instances may have read the
				// lapsed lease and not read it again for a while: writing
				// the new revision into this holder's rooms tells them to.
				h.reassert = h.reassert || rev != 0 && now.Sub(h.renewed) >= h.p.cfg.TTL
				h.rev, h.renewed = newRev, now
			}
			h.mu.Unlock()
			h.p.setLease(h.id, lease{renewed: now, rev: newRev, read: now})
			return nil
		}
		if !errors.Is(err, errKVConflict) {
			return err
		}
		b, cur, err := kvRead(ctx, h.p.holders, h.key)
		if err != nil {
			return err
		}
		var old holderRecord
		if b != nil {
			if err := json.Unmarshal(b, &old); err != nil {
				return fmt.Errorf("natsstore: presence holder %s: %w", h.id, err)
			}
		}
		h.mu.Lock()
		switch {
		case b == nil: // removed: re-create it
			h.rev = 0
			h.reassert = h.reassert || rev != 0
		case rev == 0: // a previous process's, whose counts may be anywhere
			h.rev = cur
			h.reassert, h.scan = true, true
		case old.Forgotten:
			h.rev = cur
			h.reassert = true
		case cur > h.rev:
			h.rev = cur
		}
		h.mu.Unlock()
	}
	return kvFailed("renew presence lease "+h.id, fmt.Errorf("%w %d times", errKVConflict, kvAttempts))
}

// reassertRooms sets this holder's counts to its mirror in the rooms in
// doubt, in the rooms of its mirror after a lapse, or in every room.
func (h *PresenceHolder) reassertRooms(ctx context.Context, now time.Time) error {
	h.mu.Lock()
	mine, all := h.reassert, h.scan
	todo := make(map[string]bool, len(h.dirty))
	for room := range h.dirty {
		todo[room] = true
	}
	if mine {
		for room := range h.mirror {
			todo[room] = true
		}
	}
	h.reassert, h.scan = false, false
	clear(h.dirty)
	h.mu.Unlock()

	var errs []error
	if all {
		keys, err := h.p.roomKeys(ctx)
		if err != nil {
			errs = append(errs, err)
		}
		for _, k := range keys {
			todo[k] = true
		}
	}
	for room := range todo {
		if err := h.reassertIn(ctx, room, now); err != nil {
			errs = append(errs, err)
			h.mu.Lock()
			h.dirty[room] = true
			h.mu.Unlock()
		}
	}
	if len(errs) > 0 {
		h.mu.Lock()
		h.reassert, h.scan = h.reassert || mine, h.scan || all
		h.mu.Unlock()
	}
	return errors.Join(errs...)
}

// reassertIn sets this holder's counts in room to its mirror, announcing
// the users who appear or disappear, and writes its lease's revision
// there (see roomValue).
func (h *PresenceHolder) reassertIn(ctx context.Context, room string, now time.Time) error {
	var events []presenceEvent
	err := h.updateRoom(ctx, room, now, func(v roomValue, live map[string]bool) (bool, error) {
		users := v.Users
		events = events[:0]
		h.mu.Lock()
		if h.busy[room] > 0 { // the call under way changes the mirror: next time
			h.dirty[room] = true
			h.mu.Unlock()
			return false, nil
		}
		mine := make(map[string]mirrored, len(h.mirror[room]))
		for id, u := range h.mirror[room] {
			mine[id] = *u
		}
		h.mu.Unlock()

		changed := false
		set := func(id string, u *roomUser, want uint32) {
			if u.Streams[h.id] == want {
				return
			}
			before := u.count(live)
			if want == 0 {
				delete(u.Streams, h.id)
			} else {
				u.Streams[h.id] = want
			}
			switch after := u.count(live); {
			case before == 0 && after > 0:
				events = append(events, presenceEvent{User: u.Name, At: now.UnixNano()})
			case before > 0 && after == 0:
				events = append(events, presenceEvent{Left: true, User: u.Name, At: now.UnixNano()})
			}
			if len(u.Streams) == 0 {
				delete(users, id)
			}
			changed = true
		}
		for id, u := range users {
			set(id, u, mine[id].streams)
		}
		for id, m := range mine {
			if users[id] == nil {
				u := &roomUser{Name: m.name, Streams: make(map[string]uint32)}
				users[id] = u
				set(id, u, m.streams)
			}
		}
		h.mu.Lock()
		stale := len(mine) > 0 && v.Leases[h.id] < h.rev
		h.mu.Unlock()
		return changed || stale, nil
	})
	if err != nil {
		return err
	}
	for _, e := range events {
		h.p.publish(room, e)
	}
	return nil
}

// refreshLeases reads every holder's lease into the table's cache and
// returns the holders other than self whose counts are to be removed.
func (p *Presence) refreshLeases(ctx context.Context, now time.Time, self string) ([]string, error) {
	entries, err := kvEntries(ctx, p.holders)
	if err != nil {
		return nil, err
	}
	leases := make(map[string]lease, len(entries))
	var gone []string
	for _, e := range entries {
		var rec holderRecord
		if json.Unmarshal(e.Value(), &rec) != nil || rec.ID == "" {
			continue // not a record of this package's: never removed
		}
		l := lease{renewed: time.Unix(0, rec.Renewed), forgotten: rec.Forgotten, rev: e.Revision(), read: now}
		leases[rec.ID] = l
		if rec.ID != self && p.forgettable(l, now) {
			gone = append(gone, rec.ID)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, old := range p.leases {
		if _, ok := leases[id]; !ok {
			// Deleted, or made after the listing: read it when needed.
			delete(p.leases, id)
		} else if old.rev > leases[id].rev {
			leases[id] = old // renewed after the listing
		}
	}
	for id, l := range leases {
		p.leases[id] = l
	}
	return gone, nil
}

func (p *Presence) forgettable(l lease, now time.Time) bool {
	return l.renewed.IsZero() || l.forgotten || now.Sub(l.renewed) >= p.cfg.ForgetAfter
}

// forget removes the counts of the gone holders, and of holders without a
// record if any were seen, from every room. It first marks each gone
// holder's record forgotten, so that a holder that comes back knows to
// re-assert its counts, and deletes the record at the end.
//
// A holder's counts are removed from a room only if, read after the
// room's key, its record still says so: a holder that comes back renews
// before it re-asserts, so either this sees the renewal, or the
// re-assertion changes the room's key and this update retries.
func (h *PresenceHolder) forget(ctx context.Context, gone []string, now time.Time) (err error) {
	p := h.p
	p.mu.Lock()
	scan := p.scan
	p.scan = false
	p.mu.Unlock()
	if len(gone) == 0 && !scan {
		return nil
	}
	defer func() {
		if err != nil && scan { // try again at the next Renew
			p.mu.Lock()
			p.scan = true
			p.mu.Unlock()
		}
	}()
	marked := make(map[string]uint64, len(gone))
	for _, id := range gone {
		rev, ok, err := p.mark(ctx, id, now)
		if err != nil {
			return err
		}
		if ok {
			marked[id] = rev
		}
	}
	if len(marked) == 0 && !scan {
		return nil // they all renewed meanwhile
	}
	keys, err := p.roomKeys(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, room := range keys {
		if err := h.forgetIn(ctx, room, now); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 { // the marked records stay: the next Renew goes on
		return errors.Join(errs...)
	}
	for id, rev := range marked {
		if _, err := kvWrite(ctx, p.holders, holderKey(id), nil, rev); err != nil && !errors.Is(err, errKVConflict) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// mark sets the forgotten flag on holder id's record and returns the
// record's revision; false if the holder renewed meanwhile or has no
// record any more.
func (p *Presence) mark(ctx context.Context, id string, now time.Time) (uint64, bool, error) {
	key := holderKey(id)
	for range kvAttempts {
		b, rev, err := kvRead(ctx, p.holders, key)
		if err != nil || b == nil {
			return 0, false, err
		}
		var rec holderRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			return 0, false, fmt.Errorf("natsstore: presence holder %s: %w", id, err)
		}
		l := lease{renewed: time.Unix(0, rec.Renewed), forgotten: rec.Forgotten, rev: rev, read: now}
		p.setLease(id, l)
		if !p.forgettable(l, now) {
			return 0, false, nil
		}
		if rec.Forgotten {
			return rev, true, nil
		}
		rec.Forgotten = true
		nb, err := json.Marshal(rec)
		if err != nil {
			return 0, false, err
		}
		rev, err = kvWrite(ctx, p.holders, key, nb, rev)
		if err == nil {
			return rev, true, nil
		}
		if !errors.Is(err, errKVConflict) {
			return 0, false, err
		}
	}
	return 0, false, kvFailed("mark presence holder "+id, fmt.Errorf("%w %d times", errKVConflict, kvAttempts))
}

// forgetIn removes from room the counts of holders that are gone or have
// no record, announcing the departure of users left without a stream.
func (h *PresenceHolder) forgetIn(ctx context.Context, room string, now time.Time) error {
	p := h.p
	var left []string
	err := h.updateRoom(ctx, room, now, func(v roomValue, live map[string]bool) (bool, error) {
		users := v.Users
		left = left[:0]
		fresh := make(map[string]bool) // holder → gone, read after the room
		changed := false
		for id, u := range users {
			removed := false
			for holder := range u.Streams {
				if live[holder] {
					continue
				}
				g, ok := fresh[holder]
				if !ok {
					l, err := p.readLease(ctx, holder, now)
					if err != nil {
						return false, err
					}
					g = p.forgettable(l, now)
					fresh[holder] = g
				}
				if g {
					delete(u.Streams, holder)
					removed = true
				}
			}
			if !removed {
				continue
			}
			changed = true
			if u.count(live) == 0 {
				left = append(left, u.Name)
			}
			if len(u.Streams) == 0 {
				delete(users, id)
			}
		}
		return changed, nil
	})
	if err != nil {
		return err
	}
	for _, name := range left {
		p.publish(room, presenceEvent{Left: true, User: name, At: now.UnixNano()})
	}
	return nil
}

// updateRoom applies change to room's users until the compare-and-set
// sticks. change gets the holders whose counts count at now (h among
// them, if its lease runs) and reports whether it changed anything.
func (h *PresenceHolder) updateRoom(ctx context.Context, room string, now time.Time, change func(roomValue, map[string]bool) (bool, error)) error {
	return kvUpdate(ctx, h.p.rooms, room, func(old []byte) ([]byte, bool, error) {
		v, err := decodeRoom(room, old)
		if err != nil {
			return nil, false, err
		}
		live, err := h.p.live(ctx, v, now, h.id)
		if err != nil {
			return nil, false, err
		}
		if ok, err := change(v, live); !ok || err != nil {
			return nil, false, err
		}
		if len(v.Users) == 0 {
			return nil, true, nil
		}
		counted := make(map[string]bool)
		for _, u := range v.Users {
			for holder := range u.Streams {
				counted[holder] = true
			}
		}
		for holder := range v.Leases {
			if !counted[holder] {
				delete(v.Leases, holder)
			}
		}
		if counted[h.id] {
			h.mu.Lock()
			v.Leases[h.id] = max(v.Leases[h.id], h.rev)
			h.mu.Unlock()
		}
		b, err := json.Marshal(v)
		return b, true, err
	})
}

// live returns the holders of v's counts, and self, whose leases run at
// now. It reads a lease it has not seen or has an older revision of than
// v names, and one that had lapsed when it was read at most every TTL/3
// (Renew reads them all); a lapsed lease never counts.
func (p *Presence) live(ctx context.Context, v roomValue, now time.Time, self string) (map[string]bool, error) {
	live := map[string]bool{self: false}
	for _, u := range v.Users {
		for h := range u.Streams {
			live[h] = false
		}
	}
	var unread []string
	p.mu.Lock()
	for h := range live {
		l, ok := p.leases[h]
		if !ok || l.rev < v.Leases[h] || (!l.live(now, p.cfg.TTL) && now.Sub(l.read) >= p.cfg.TTL/3) {
			unread = append(unread, h)
		}
		live[h] = l.live(now, p.cfg.TTL)
	}
	p.mu.Unlock()
	for _, h := range unread {
		l, err := p.readLease(ctx, h, now)
		if err != nil {
			return nil, err
		}
		live[h] = l.live(now, p.cfg.TTL)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for h, ok := range live {
		if l := p.leases[h]; !ok && h != self && l.renewed.IsZero() {
			p.scan = true // counts without a record: Renew removes them
		}
	}
	return live, nil
}

// readLease reads holder id's lease and caches it.
func (p *Presence) readLease(ctx context.Context, id string, now time.Time) (lease, error) {
	e, err := p.holders.Get(ctx, holderKey(id))
	l := lease{read: now}
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		return lease{}, kvFailed("get presence holder "+id, err)
	default:
		var rec holderRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil {
			return lease{}, fmt.Errorf("natsstore: presence holder %s: %w", id, err)
		}
		l.renewed, l.forgotten, l.rev = time.Unix(0, rec.Renewed), rec.Forgotten, e.Revision()
	}
	p.setLease(id, l)
	return l, nil
}

// setLease caches what was read or written of a lease, unless the cache
// has a later revision of the holder's record already.
func (p *Presence) setLease(id string, l lease) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if old, ok := p.leases[id]; ok && old.rev > l.rev && l.rev != 0 {
		return
	}
	p.leases[id] = l
}

// holderKey is a holder's key in HoldersBucket: its ID when that is a
// valid key, else a hash of it.
func holderKey(id string) string {
	if presenceToken.MatchString(id) {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return "=" + hex.EncodeToString(sum[:])
}

// roomKeys lists the rooms with users.
func (p *Presence) roomKeys(ctx context.Context) ([]string, error) {
	entries, err := kvEntries(ctx, p.rooms, jetstream.MetaOnly())
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(entries))
	for i, e := range entries {
		keys[i] = e.Key()
	}
	return keys, nil
}

// publish announces a presence change of room; an event is best-effort
// (see Watch), and the count it announces is made already, so a failure
// to publish is not the caller's.
func (p *Presence) publish(room string, e presenceEvent) {
	b, err := json.Marshal(e)
	if err == nil {
		_ = p.nc.Publish(p.cfg.Subject+"."+room, b)
	}
}

// online is how many of the users have a stream under a live holder.
func (us roomUsers) online(live map[string]bool) int {
	n := 0
	for _, u := range us {
		if u.count(live) > 0 {
			n++
		}
	}
	return n
}

// count is u's streams under the live holders; 0 for no user.
func (u *roomUser) count(live map[string]bool) uint32 {
	if u == nil {
		return 0
	}
	var n uint32
	for h, c := range u.Streams {
		if live[h] {
			n += c
		}
	}
	return n
}

func decodeRoom(room string, b []byte) (roomValue, error) {
	var v roomValue
	if b != nil {
		if err := json.Unmarshal(b, &v); err != nil {
			return roomValue{}, fmt.Errorf("natsstore: presence of room %s: %w", room, err)
		}
	}
	if v.Users == nil {
		v.Users = make(roomUsers)
	}
	if v.Leases == nil {
		v.Leases = make(map[string]uint64)
	}
	for id, u := range v.Users {
		if u == nil {
			delete(v.Users, id)
		} else if u.Streams == nil {
			u.Streams = make(map[string]uint32)
		}
	}
	return v, nil
}

func checkRoom(room string) error {
	if !presenceToken.MatchString(room) {
		return fmt.Errorf("natsstore: room code %q is not a NATS token", room)
	}
	return nil
}
