package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// Client is a GRPCChatter user: an account, its user token, and the rooms
// it has joined, all over one connection to the chat service. It is safe
// for concurrent use. Create it with New and release it with Close.
//
// JoinRoom joins any number of rooms, each a *Room with its own events.
// JoinChatRoom joins one room that the Client's own Send, Receive,
// ListChatRoomUsers and Disconnect then act on, for programs that use one
// room at a time.
type Client struct {
	cfg  config
	conn *grpc.ClientConn
	chat chatv1.ChatServiceClient

	mu     sync.Mutex
	closed bool
	creds  Credentials
	// credsTTL is how long creds.Token had to live when the Client got it.
	credsTTL time.Duration
	// credsGen counts changes of creds, so that a login in flight can tell
	// whether what it renews is still current.
	credsGen int
	login    login
	renewing *renewal // the login in flight, if any
	// sess is the room JoinChatRoom joined, which the Client's own Send,
	// Receive, ListChatRoomUsers and Disconnect act on; nil if none.
	sess *session
	// rooms are the sessions joined and not left, sess among them.
	rooms map[*session]struct{}
}

// New returns a Client. It does not contact the services: the chat
// connection is made on first use.
func New(opts ...Option) (*Client, error) {
	cfg := newConfig(opts)
	if cfg.backlog < 0 {
		return nil, &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("backlog %d: want 0 (none) or more", cfg.backlog)}
	}
	// The URL goes into errors and logs: one with credentials is refused,
	// and only its redacted form is ever shown.
	u, err := url.Parse(cfg.authURL)
	if err != nil {
		return nil, &Error{Kind: ErrInvalidArgument, Message: "auth URL: not a URL; want http://host[:port] or https://host[:port]"}
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("auth URL %q: want http://host[:port] or https://host[:port], without credentials", u.Redacted())}
	}
	target, targetOpts, err := chatTarget(cfg.chatAddresses)
	if err != nil {
		return nil, err
	}
	creds := insecure.NewCredentials()
	if cfg.tls != nil {
		creds = credentials.NewTLS(cfg.tls)
	}
	// gRPC's own reconnection backoff starts at one second and grows to two
	// minutes; keep it in step with ours so that a restarted service is
	// found again quickly.
	bc := backoff.DefaultConfig
	bc.BaseDelay = cfg.backoff.Initial
	bc.MaxDelay = cfg.backoff.Max
	bc.Multiplier = cfg.backoff.Multiplier
	bc.Jitter = cfg.backoff.Jitter
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 5 * time.Second}),
		grpc.WithKeepaliveParams(KeepaliveParams()),
		grpc.WithDefaultServiceConfig(balancing),
	}, targetOpts...)
	dial = append(dial, cfg.dialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, fmt.Errorf("client: chat address %q: %w", strings.Join(cfg.chatAddresses, ","), err)
	}
	return &Client{cfg: cfg, conn: conn, chat: chatv1.NewChatServiceClient(conn), rooms: map[*session]struct{}{}}, nil
}

// KeepaliveParams are the HTTP/2 keepalive settings a Client dials chat
// with: a PING after 30 s without activity, and the connection given up
// when it is not answered within 10 s, so a connection that died without
// a reset (a sleeping laptop, a dropped NAT entry) is found within 40 s.
// The chat service allows one PING every 10 s. The PING is data to TCP,
// sent again when a packet is lost, so packet loss alone does not end a
// connection. Other gRPC clients of the service can use the same.
func KeepaliveParams() keepalive.ClientParameters {
	return keepalive.ClientParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}
}

// Close leaves every room the Client joined and releases the connection.
// The Client cannot be used afterwards.
func (c *Client) Close() error {
	if c.conn == nil {
		return ErrNotCreated
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.login = login{} // the password is not kept past Close
	rooms := c.rooms
	c.rooms = nil
	c.sess = nil
	c.mu.Unlock()
	// All are cancelled before any is waited for, so that they end
	// together.
	for s := range rooms {
		s.cancel()
	}
	for s := range rooms {
		<-s.done
	}
	return c.conn.Close()
}

// Credentials are a logged-in user's name and token.
type Credentials struct {
	UserName  string
	Token     string
	ExpiresAt time.Time
}

// usable tells why the Client cannot be used, if it cannot: it is the zero
// value, or closed.
func (c *Client) usable() error {
	if c.chat == nil {
		return ErrNotCreated
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return nil
}

// CreateChatRoom creates a password-protected room owned by the logged-in
// user and returns its short code. It does not join the room.
func (c *Client) CreateChatRoom(ctx context.Context, name, password string) (string, error) {
	var resp *chatv1.CreateChatRoomResponse
	err := c.withUserToken(ctx, func(tok string) (err error) {
		resp, err = c.chat.CreateChatRoom(withToken(ctx, tok), &chatv1.CreateChatRoomRequest{Name: name, Password: password})
		return fromGRPC(err)
	})
	if err != nil {
		return "", err
	}
	return resp.GetShortCode(), nil
}

// DeleteChatRoom deletes a room the logged-in user owns. Users in it receive
// a RoomDeleted event and their sessions end.
func (c *Client) DeleteChatRoom(ctx context.Context, shortCode string) error {
	return c.withUserToken(ctx, func(tok string) error {
		_, err := c.chat.DeleteChatRoom(withToken(ctx, tok), &chatv1.DeleteChatRoomRequest{ShortCode: shortCode})
		return fromGRPC(err)
	})
}

// roomAdmission is a room token and what came with it.
type roomAdmission struct {
	token     string
	expiresAt time.Time
	shortCode string
	name      string
}

func (c *Client) joinRPC(ctx context.Context, shortCode, password string) (roomAdmission, error) {
	var resp *chatv1.JoinChatRoomResponse
	err := c.withUserToken(ctx, func(tok string) (err error) {
		resp, err = c.chat.JoinChatRoom(withToken(ctx, tok), &chatv1.JoinChatRoomRequest{ShortCode: shortCode, Password: password})
		return fromGRPC(err)
	})
	if err != nil {
		return roomAdmission{}, err
	}
	a := roomAdmission{token: resp.GetToken(), shortCode: resp.GetShortCode(), name: resp.GetName()}
	if resp.GetExpiresAt() != nil {
		a.expiresAt = resp.GetExpiresAt().AsTime()
	}
	if a.shortCode == "" {
		a.shortCode = shortCode
	}
	return a, nil
}

// JoinChatRoom joins the room as JoinRoom does, as the Client's single
// room: the Client's own Send, Receive, ListChatRoomUsers and Disconnect
// act on it, and so do the returned Room's methods. It returns
// ErrAlreadyJoined while that room is open: Disconnect before joining
// another. Rooms joined with JoinRoom stay open beside it.
func (c *Client) JoinChatRoom(ctx context.Context, shortCode, password string) (*Room, error) {
	return c.join(ctx, shortCode, password, true)
}

// join joins a room and opens its stream. single makes it the Client's
// single room (JoinChatRoom).
func (c *Client) join(ctx context.Context, shortCode, password string, single bool) (*Room, error) {
	if c.chat == nil {
		return nil, ErrNotCreated
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrClosed
	case single && c.sess != nil && !c.sess.ended():
		c.mu.Unlock()
		return nil, ErrAlreadyJoined
	}
	c.mu.Unlock()

	adm, err := c.joinRPC(ctx, shortCode, password)
	if err != nil {
		return nil, c.closedOr(err)
	}
	// The service's short code is the room's own spelling: checked before
	// opening a stream, which others would see as the caller joining.
	if err := c.mayJoin(adm.shortCode, single); err != nil {
		return nil, err
	}
	s := newSession(c, adm, password)
	octx, cancel := context.WithTimeout(ctx, c.cfg.openTimeout)
	cn, err := s.open(octx)
	timedOut := octx.Err() != nil && ctx.Err() == nil
	cancel()
	if err != nil {
		s.cancel()
		if timedOut {
			err = attemptTimedOut(c.cfg.openTimeout)
		}
		return nil, c.closedOr(err)
	}
	head := cn.opened.GetHeadSequence()
	backlog := min(uint64(cn.opened.GetBacklog()), head)
	room := &Room{
		ShortCode:    adm.shortCode,
		Name:         adm.name,
		Epoch:        cn.opened.GetEpoch(),
		HeadSequence: head,
		Backlog:      int(backlog),
		Users:        usersFromProto(cn.opened.GetUsers()),
		s:            s,
	}
	if n := cn.opened.GetName(); n != "" {
		room.Name = n
	}
	// The backlog is the latest messages up to head, which the session
	// delivers as if resuming just before them: should this stream break
	// meanwhile, the next one replays the rest of them, and no more.
	s.epoch, s.lastSeq = cn.opened.GetEpoch(), head-backlog
	if backlog > 0 {
		s.earlierEpoch, s.earlierSeq = cn.opened.GetEpoch(), head
	}
	s.backlog = 0
	s.in.start(s.epoch, s.lastSeq)

	c.mu.Lock()
	// Another join or Close may have won the race.
	err = c.mayJoinLocked(adm.shortCode, single)
	if err == nil {
		if single {
			c.sess = s
		}
		c.rooms[s] = struct{}{}
	}
	c.mu.Unlock()
	if err != nil {
		cn.cancel()
		s.cancel()
		return nil, err
	}
	s.start(cn)
	return room, nil
}

// mayJoin tells why the Client cannot join the room with this short code,
// if it cannot: it is closed, or already in the room, or (single) already
// in a single room.
func (c *Client) mayJoin(shortCode string, single bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mayJoinLocked(shortCode, single)
}

// mayJoinLocked is mayJoin with c.mu held. It forgets the sessions in the
// way of the join that ended by themselves (the room was deleted, the
// user token refused...): their goroutines are gone, and their Receive
// still tells why they ended.
func (c *Client) mayJoinLocked(shortCode string, single bool) error {
	if c.closed {
		return ErrClosed
	}
	if single && c.sess != nil {
		if !c.sess.ended() {
			return ErrAlreadyJoined
		}
		delete(c.rooms, c.sess)
		c.sess = nil
	}
	for s := range c.rooms {
		if s.shortCode != shortCode {
			continue
		}
		if !s.ended() {
			return fmt.Errorf("room %s: %w", shortCode, ErrAlreadyJoined)
		}
		delete(c.rooms, s)
	}
	return nil
}

// closedOr returns ErrClosed if Close was called, which makes calls in
// flight fail with whatever the closing connection caused, or else err.
func (c *Client) closedOr(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	return err
}

func (c *Client) session() (*session, error) {
	if c.chat == nil {
		return nil, ErrNotCreated
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.sess == nil {
		return nil, ErrNotJoined
	}
	return c.sess, nil
}

// ListChatRoomUsers lists the users online in the room JoinChatRoom
// joined, sorted by name.
func (c *Client) ListChatRoomUsers(ctx context.Context) ([]User, error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	return s.listUsers(ctx)
}

// PeekChatRoomUsers lists the users online in a room without joining it:
// it gets a room token but opens no stream, so the caller does not show as
// online. It needs the room password like JoinChatRoom.
func (c *Client) PeekChatRoomUsers(ctx context.Context, shortCode, password string) ([]User, error) {
	adm, err := c.joinRPC(ctx, shortCode, password)
	if err != nil {
		return nil, err
	}
	return c.listRPC(ctx, adm.token, adm.shortCode)
}

func (c *Client) listRPC(ctx context.Context, roomToken, shortCode string) ([]User, error) {
	resp, err := c.chat.ListChatRoomUsers(withToken(ctx, roomToken), &chatv1.ListChatRoomUsersRequest{ShortCode: shortCode})
	if err != nil {
		return nil, fromGRPC(err)
	}
	return usersFromProto(resp.GetUsers()), nil
}

// Send posts body to the room JoinChatRoom joined, as Room.Send does.
func (c *Client) Send(ctx context.Context, body string) (string, error) {
	s, err := c.session()
	if err != nil {
		return "", err
	}
	return s.send(ctx, body)
}

// Receive returns the next event of the room JoinChatRoom joined, as
// Room.Receive does; after Disconnect, ErrNotJoined.
func (c *Client) Receive(ctx context.Context) (Event, error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	return s.receive(ctx)
}

// Disconnect leaves the room JoinChatRoom joined, as Room.Leave does, and
// returns ErrNotJoined when there is none. Rooms joined with JoinRoom stay
// open.
func (c *Client) Disconnect(ctx context.Context) error {
	if c.chat == nil {
		return ErrNotCreated
	}
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	if s != nil {
		delete(c.rooms, s)
	}
	c.mu.Unlock()
	if s == nil {
		return ErrNotJoined
	}
	return s.leave(ctx)
}

func withToken(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func newMessageID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// isTerminal tells errors that end a session from those worth retrying.
func isTerminal(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrPermissionDenied) ||
		errors.Is(err, ErrNotLoggedIn) || errors.Is(err, ErrClosed) || errors.Is(err, ErrReplaced)
}
