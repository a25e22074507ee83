package api

import (
	"context"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// userStreams indexes this instance's subscribed Chat streams by user:
// the send bucket a user's streams share (see pace) and the streams
// themselves, oldest first, of which a new stream of the user over
// MAX_STREAMS_PER_USER replaces the oldest in its room (see
// replaceOldest). Streams on other instances are not here: their
// instance replaces them, or the refusal stands.
type userStreams struct {
	mu    sync.Mutex
	users map[string]*userEntry // by user ID
}

// userEntry is one user's streams on this instance.
type userEntry struct {
	send bucket // shared by the user's streams, outlives them until full again

	// Guarded by userStreams.mu.
	n          int   // subscribed streams
	head, tail *conn // the subscribed streams, oldest first, linked through conn.uprev/unext
}

// add registers c, which has just subscribed, as its user's newest
// stream, and returns its user's entry.
func (u *userStreams) add(c *conn) *userEntry {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.users == nil {
		u.users = make(map[string]*userEntry)
	}
	e := u.users[c.member.ID]
	if e == nil {
		e = &userEntry{}
		u.users[c.member.ID] = e
	}
	e.n++
	c.uprev = e.tail
	if e.tail != nil {
		e.tail.unext = c
	} else {
		e.head = c
	}
	e.tail = c
	return e
}

// remove unregisters c, which add registered, once its subscription has
// closed, and wakes whoever waits to take its place. A user's entry is
// forgotten once the user has no stream here and the bucket is full
// again (now is the buckets' clock): until then a user who reconnects
// finds the bucket as it was left, so leaving and coming back does not
// buy a fresh burst.
func (u *userStreams) remove(c *conn, now int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := c.user
	if c.uprev != nil {
		c.uprev.unext = c.unext
	} else {
		e.head = c.unext
	}
	if c.unext != nil {
		c.unext.uprev = c.uprev
	} else {
		e.tail = c.uprev
	}
	c.uprev, c.unext = nil, nil
	if c.released != nil {
		close(c.released)
	}
	if e.n--; e.n > 0 {
		return
	}
	id := c.member.ID
	d := e.send.fullIn(now)
	if d <= 0 {
		delete(u.users, id)
		return
	}
	// Owner: the runtime's timer, once. Exit: at once, having forgotten
	// the entry unless the user came back meanwhile.
	time.AfterFunc(d, func() {
		u.mu.Lock()
		defer u.mu.Unlock()
		if u.users[id] == e && e.n == 0 {
			delete(u.users, id)
		}
	})
}

// oldest returns the user's oldest stream in room on this instance and a
// channel closed once it has been removed, or nil if there is none.
func (u *userStreams) oldest(room, userID string) (*conn, <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	e := u.users[userID]
	if e == nil {
		return nil, nil
	}
	for c := e.head; c != nil; c = c.unext {
		if c.code == room {
			if c.released == nil {
				c.released = make(chan struct{})
			}
			return c, c.released
		}
	}
	return nil, nil
}

// replaceOldest makes room for c, whose Subscribe was refused (refused)
// because its user has as many streams in the room as allowed: it ends
// the user's oldest stream in the room on this instance with
// rooms.ErrReplaced, waits until that one's subscription has closed,
// which gives its slot back, and subscribes once more. The user's own
// ghost (a vanished client whose connection is not yet known to be dead)
// thus never keeps the user out. Without such a stream here (the user's
// other streams are on other instances) the refusal stands.
func (c *conn) replaceOldest(ctx context.Context, open rooms.Open, refused error) (*rooms.Subscription, error) {
	s := c.s
	old, released := s.users.oldest(c.code, c.member.ID)
	if old == nil {
		return nil, refused
	}
	old.e.end(rooms.ErrReplaced)
	s.cfg.Metrics.StreamsReplaced.Inc()
	select {
	case <-released:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-c.e.done:
		return nil, refused // the stream has ended meanwhile (Drain): its reason wins
	}
	return s.engine.Subscribe(ctx, c.code, c.member, open)
}
