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
	"unicode/utf8"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
)

// Client is a GRPCChatter user: an account, its user token and at most one
// open room at a time. It is safe for concurrent use. Create it with New and
// release it with Close.
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
	sess     *session
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
	return &Client{cfg: cfg, conn: conn, chat: chatv1.NewChatServiceClient(conn)}, nil
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

// Close disconnects from the room, if any, and releases the connection. The
// Client cannot be used afterwards.
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
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s != nil {
		s.stop()
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

// JoinChatRoom joins the room and opens its stream, returning once the
// service has accepted it; the caller then shows as online to the others.
// The room password is kept in memory to renew the room token. One room can
// be open at a time: Disconnect before joining another.
func (c *Client) JoinChatRoom(ctx context.Context, shortCode, password string) (*Room, error) {
	if c.chat == nil {
		return nil, ErrNotCreated
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return nil, ErrClosed
	case c.sess != nil && !c.sess.ended():
		c.mu.Unlock()
		return nil, ErrAlreadyJoined
	case c.sess != nil:
		c.sess.cancel() // it ended by itself; release its context
	}
	c.mu.Unlock()

	adm, err := c.joinRPC(ctx, shortCode, password)
	if err != nil {
		return nil, c.closedOr(err)
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

	c.mu.Lock()
	if c.closed || (c.sess != nil && !c.sess.ended()) {
		// Another JoinChatRoom or Close won the race.
		closed := c.closed
		c.mu.Unlock()
		cn.cancel()
		s.cancel()
		if closed {
			return nil, ErrClosed
		}
		return nil, ErrAlreadyJoined
	}
	c.sess = s
	c.mu.Unlock()
	s.start(cn)
	return room, nil
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

// ListChatRoomUsers lists the users online in the joined room, sorted by name.
func (c *Client) ListChatRoomUsers(ctx context.Context) ([]User, error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	tok, err := s.freshRoomToken(ctx)
	if err != nil {
		return nil, err
	}
	return c.listRPC(ctx, tok, s.shortCode)
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

// Send posts body to the joined room and returns the client message ID it
// generated, which comes back in the broadcast *Message. While the Client is
// reconnecting, Send waits for the stream within ctx. Once Send returns the
// ID the message is the Client's to deliver: it comes back as a *Message,
// or, if the service refuses it, as a *SendFailed.
//
// A body that is empty, not UTF-8 or longer than the service accepts (see
// WithMaxMessageBytes) fails at once with ErrInvalidArgument.
func (c *Client) Send(ctx context.Context, body string) (string, error) {
	s, err := c.session()
	if err != nil {
		return "", err
	}
	limit := s.bodyLimit()
	switch {
	case body == "":
		return "", &Error{Kind: ErrInvalidArgument, Message: "message body is empty"}
	case len(body) > limit:
		return "", &Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("message body is %d bytes, more than the %d the room accepts", len(body), limit)}
	case !utf8.ValidString(body):
		return "", &Error{Kind: ErrInvalidArgument, Message: "message body is not valid UTF-8"}
	}
	return s.send(ctx, body)
}

// Receive returns the room's next event. It blocks until there is one, ctx
// is done, or the session ends: then it returns ErrDisconnected after
// Disconnect or Close, ErrRoomDeleted after a *RoomDeleted event, or the
// error that ended the session (e.g. ErrUnauthenticated, ErrNotFound,
// ErrReplaced).
func (c *Client) Receive(ctx context.Context) (Event, error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	return s.receive(ctx)
}

// Disconnect leaves the joined room: it closes the stream (the others see
// the caller leave) and stops reconnecting. Pending Receive and Send calls
// return ErrDisconnected. It waits for the session's goroutines within ctx
// and returns ErrNotJoined when no room is joined.
func (c *Client) Disconnect(ctx context.Context) error {
	if c.chat == nil {
		return ErrNotCreated
	}
	c.mu.Lock()
	s := c.sess
	c.sess = nil
	c.mu.Unlock()
	if s == nil {
		return ErrNotJoined
	}
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
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
