package client

import "context"

// JoinRoom joins a room and opens its stream, returning once the service
// has accepted it; the caller then shows as online to the others. The room
// password is kept in memory to renew the room token.
//
// A Client holds any number of rooms at once, over its one connection and
// its one login. Each Room has a session of its own: its own events, which
// only its Receive returns, its own reconnection, resume, token renewal
// and backlog, and its own buffer of unread events; leaving one leaves the
// others open. JoinRoom returns an error matching ErrAlreadyJoined when
// the Client is in the room already.
func (c *Client) JoinRoom(ctx context.Context, shortCode, password string) (*Room, error) {
	return c.join(ctx, shortCode, password, false)
}

// session returns the room's session, or why it has none.
func (r *Room) session() (*session, error) {
	if r == nil || r.s == nil {
		return nil, ErrNotJoined
	}
	if err := r.s.c.usable(); err != nil {
		return nil, err
	}
	return r.s, nil
}

// Send posts body to the room and returns the client message ID it
// generated, which comes back in the broadcast *Message. While the room's
// stream is reconnecting, Send waits for it within ctx. Once Send returns
// the ID the message is the Client's to deliver: it comes back as a
// *Message, or, if the service refuses it, as a *SendFailed.
//
// Send never waits for the application to read events (see WithEventBuffer).
// An error means the message was not sent, and says why: a body that is
// empty, not UTF-8 or longer than the service accepts (see
// WithMaxMessageBytes) fails at once with ErrInvalidArgument; after Leave,
// ErrDisconnected; after the session ended, what ended it (ErrRoomDeleted,
// ErrUnauthenticated, ErrReplaced...). When ctx ends first, the error
// matches ctx's and, while the stream is reconnecting, what broke it too
// (ErrUnavailable, ErrRateLimited, ErrRoomFull...).
func (r *Room) Send(ctx context.Context, body string) (string, error) {
	s, err := r.session()
	if err != nil {
		return "", err
	}
	return s.send(ctx, body)
}

// Receive returns the room's next event. It blocks until there is one, ctx
// is done, or the session ends: then it returns ErrDisconnected after
// Leave or Close, ErrRoomDeleted after a *RoomDeleted event, or the error
// that ended the session (e.g. ErrUnauthenticated, ErrNotFound,
// ErrReplaced). Events the application left unread for too long are
// reported as a *Gap (see WithEventBuffer).
func (r *Room) Receive(ctx context.Context) (Event, error) {
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	return s.receive(ctx)
}

// ListUsers lists the users online in the room now, sorted by name.
func (r *Room) ListUsers(ctx context.Context) ([]User, error) {
	s, err := r.session()
	if err != nil {
		return nil, err
	}
	return s.listUsers(ctx)
}

// Leave leaves the room: it closes the room's stream (the others see the
// caller leave) and stops reconnecting it; the Client's other rooms stay
// open. Pending Receive and Send calls on the room return ErrDisconnected.
// It waits for the session's goroutines within ctx, and returns
// ErrNotJoined when the room was left already (by Leave, Disconnect or
// Close).
func (r *Room) Leave(ctx context.Context) error {
	if r == nil || r.s == nil {
		return ErrNotJoined
	}
	c := r.s.c
	c.mu.Lock()
	_, open := c.rooms[r.s]
	delete(c.rooms, r.s)
	if c.sess == r.s {
		c.sess = nil
	}
	c.mu.Unlock()
	if !open {
		return ErrNotJoined
	}
	return r.s.leave(ctx)
}
