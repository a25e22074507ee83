package client

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refreshBefore is how long before its expiry a room token is renewed.
const refreshBefore = 30 * time.Second

// session is one joined room: its stream, kept open across breaks by the run
// goroutine.
type session struct {
	c         *Client
	log       *zap.Logger
	shortCode string
	password  string

	ctx    context.Context // cancelled by Disconnect or Close
	cancel context.CancelFunc
	events chan Event    // written by run only; closed when it ends
	sends  chan *sendReq // read by the current connection's writer
	done   chan struct{} // closed when run has returned

	mu        sync.Mutex
	roomToken string
	roomExp   time.Time
	err       error // why the session ended; set before events is closed
	// unconfirmed are messages written to a stream and not yet seen come
	// back; seen, while a reconnection replays, the IDs that came back.
	unconfirmed []*chatv1.Send
	seen        map[string]struct{}

	// Owned by the run goroutine (and by JoinChatRoom before it starts).
	epoch   string
	lastSeq uint64
	// recent are the last messages' sender and client IDs, to drop the
	// second copy of a message that was sent again after a reconnection
	// although the service had recorded it after all.
	recent     map[string]struct{}
	recentRing []string
	recentNext int
	// rejected is set when the service ended a stream as invalid, which a
	// message it refused causes: the unconfirmed messages are then dropped
	// rather than sent again and again.
	rejected bool
}

type sendReq struct {
	msg    *chatv1.Send
	result chan error // buffered: the writer never blocks on it
}

// conn is one Chat stream.
type conn struct {
	stream grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	cancel context.CancelFunc
	opened *chatv1.Opened
	// previousEpoch is the session's epoch when the stream opened.
	previousEpoch string
	rest          []*chatv1.Event // events that came in the Opened frame
}

func newSession(c *Client, adm roomAdmission, password string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		c:         c,
		log:       c.cfg.logger.With(zap.String("room", adm.shortCode)),
		shortCode: adm.shortCode,
		password:  password,
		ctx:       ctx,
		cancel:    cancel,
		events:    make(chan Event, c.cfg.bufferSize),
		sends:     make(chan *sendReq),
		done:      make(chan struct{}),
		roomToken: adm.token,
		roomExp:   adm.expiresAt,
	}
}

// start hands the first stream to the run goroutine, which lives until the
// session ends (Disconnect, Close, or a terminal error) and closes done.
func (s *session) start(first *conn) {
	go s.run(first)
}

func (s *session) stop() {
	s.cancel()
	<-s.done
}

func (s *session) ended() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

func (s *session) finalErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		return ErrDisconnected
	}
	return s.err
}

func (s *session) receive(ctx context.Context) (Event, error) {
	if s.ctx.Err() != nil {
		return nil, ErrDisconnected
	}
	select {
	case ev, ok := <-s.events:
		if !ok {
			return nil, s.finalErr()
		}
		return ev, nil
	case <-s.ctx.Done():
		return nil, ErrDisconnected
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *session) send(ctx context.Context, body string) (string, error) {
	req := &sendReq{
		msg:    &chatv1.Send{ClientMessageId: newMessageID(), Body: body},
		result: make(chan error, 1),
	}
	select {
	case s.sends <- req:
	case <-s.done:
		return "", s.finalErr()
	case <-s.ctx.Done():
		return "", ErrDisconnected
	case <-ctx.Done():
		return "", ctx.Err()
	}
	select {
	case err := <-req.result:
		return req.msg.GetClientMessageId(), err
	case <-s.done:
		return "", s.finalErr()
	case <-s.ctx.Done():
		return "", ErrDisconnected
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// freshRoomToken returns the room token, renewing it first when it is about
// to expire.
func (s *session) freshRoomToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	tok, exp := s.roomToken, s.roomExp
	s.mu.Unlock()
	if exp.IsZero() || time.Until(exp) > refreshBefore {
		return tok, nil
	}
	if err := s.rejoin(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomToken, nil
}

// rejoin gets a new room token with the saved password and user token.
func (s *session) rejoin(ctx context.Context) error {
	adm, err := s.c.joinRPC(ctx, s.shortCode, s.password)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.roomToken, s.roomExp = adm.token, adm.expiresAt
	s.mu.Unlock()
	s.log.Debug("room token renewed", zap.Time("expires_at", adm.expiresAt))
	return nil
}

// open starts a stream and waits for its Opened event. hctx bounds the
// handshake only; the stream itself lives until the session ends or the
// stream breaks.
func (s *session) open(hctx context.Context) (*conn, error) {
	tok, err := s.freshRoomToken(hctx)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithCancel(s.ctx)
	stopAfter := context.AfterFunc(hctx, cancel)
	defer stopAfter()
	fail := func(err error) (*conn, error) {
		cancel()
		if hctx.Err() != nil {
			return nil, hctx.Err()
		}
		return nil, fromGRPC(err)
	}
	stream, err := s.c.chat.Chat(withToken(cctx, tok))
	if err != nil {
		return fail(err)
	}
	open := &chatv1.Open{}
	if s.epoch != "" {
		open.Resume = &chatv1.Resume{Epoch: s.epoch, AfterSequence: s.lastSeq}
	}
	if err := stream.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: open}}); err != nil && !errors.Is(err, io.EOF) {
		return fail(err)
	}
	// A failed Send is reported by Recv with the stream's real status.
	resp, err := stream.Recv()
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = status.Error(codes.Unavailable, "stream closed before it opened")
		}
		return fail(err)
	}
	evs := resp.GetEvents()
	if len(evs) == 0 || evs[0].GetOpened() == nil {
		cancel()
		return nil, &Error{Kind: ErrServer, Message: "stream did not start with Opened"}
	}
	return &conn{stream: stream, cancel: cancel, opened: evs[0].GetOpened(), rest: evs[1:], previousEpoch: s.epoch}, nil
}

// end records why the session ended and tells Receive.
func (s *session) end(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	close(s.events)
	close(s.done)
}

// emit hands an event to Receive, waiting while the buffer is full.
func (s *session) emit(ev Event) error {
	select {
	case s.events <- ev:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

// run keeps the session's stream open until the session ends.
func (s *session) run(first *conn) {
	err := s.serve(first)
	attempt := 0
	renewed := false
	for {
		if s.ctx.Err() != nil {
			s.end(ErrDisconnected)
			return
		}
		if isTerminal(err) {
			s.log.Info("session ended", zap.Error(err))
			s.end(err)
			return
		}
		if errors.Is(err, ErrInvalidArgument) {
			s.rejected = true
		}
		if errors.Is(err, ErrUnauthenticated) {
			// The room token expired or was rejected: renew it once, right
			// away. A second refusal means the user token is no good either.
			if renewed {
				s.end(err)
				return
			}
			if rerr := s.rejoin(s.ctx); rerr != nil {
				err = rerr
				if errors.Is(rerr, ErrUnauthenticated) {
					s.end(rerr)
					return
				}
				continue
			}
			renewed = true
		} else {
			delay := s.c.cfg.backoff.delay(attempt)
			if d, ok := RetryAfter(err); ok && d > delay {
				delay = d
			}
			s.log.Info("chat stream broke; reconnecting", zap.Error(err), zap.Int("attempt", attempt), zap.Duration("retry_in", delay))
			if s.emit(&Connection{State: Reconnecting, Attempt: attempt, Err: err, Retry: delay}) != nil {
				continue
			}
			attempt++
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-s.ctx.Done():
				t.Stop()
				continue
			}
		}
		cn, oerr := s.open(s.ctx)
		if oerr != nil {
			err = oerr
			continue
		}
		attempt, renewed = 0, false
		s.log.Info("chat stream reopened", zap.String("epoch", cn.opened.GetEpoch()), zap.Stringer("recovery", cn.opened.GetRecovery()))
		err = s.serve(cn)
	}
}

// serve delivers a stream's events until it breaks, with a writer goroutine
// sending what Send queues. It returns why the stream ended.
//
// After a reconnection the writer starts only once the replay is through:
// messages written on the old stream that the replay does not show were
// never recorded, and are sent again first, in their order.
func (s *session) serve(cn *conn) error {
	defer cn.cancel()
	resend := s.takeUnconfirmed()
	err := s.opened(cn.opened)
	if err == nil {
		err = s.deliver(cn.rest)
	}
	for err == nil && cn.opened.GetRecovery() == chatv1.Recovery_RECOVERY_COMPLETE && s.lastSeq < cn.opened.GetHeadSequence() {
		err = s.recv(cn)
	}
	resend = s.confirm(resend)
	if s.rejected && err == nil {
		if len(resend) > 0 {
			s.log.Warn("messages the service refused were dropped", zap.Int("count", len(resend)))
		}
		resend, s.rejected = nil, false
	}
	if err != nil {
		s.restoreUnconfirmed(resend)
		return err
	}
	switch cn.opened.GetRecovery() {
	case chatv1.Recovery_RECOVERY_FAILED:
		if s.epoch == cn.previousEpoch {
			// Same epoch but outside the history window: whether these were
			// recorded cannot be told, and sending twice is worse than not
			// knowing.
			if len(resend) > 0 {
				s.log.Warn("unconfirmed messages dropped after a history gap", zap.Int("count", len(resend)))
			}
			resend = nil
		}
		// A new epoch means the service restarted: what it had not
		// broadcast is gone, so send it again.
	}
	if len(resend) > 0 {
		s.log.Debug("sending unconfirmed messages again", zap.Int("count", len(resend)))
	}
	var wg sync.WaitGroup
	wg.Add(1)
	// The writer lives until this stream is cancelled, which serve does on
	// its way out; serve waits for it.
	go func() {
		defer wg.Done()
		s.writeLoop(cn, resend)
	}()
	for err == nil {
		err = s.recv(cn)
	}
	cn.cancel()
	wg.Wait()
	return err
}

// recv reads and delivers one frame.
func (s *session) recv(cn *conn) error {
	resp, err := cn.stream.Recv()
	if err != nil {
		if s.ctx.Err() != nil {
			return s.ctx.Err()
		}
		if errors.Is(err, io.EOF) {
			return &Error{Kind: ErrUnavailable, Message: "stream closed by the service", Code: codes.Unavailable}
		}
		return fromGRPC(err)
	}
	return s.deliver(resp.GetEvents())
}

// takeUnconfirmed removes and returns the messages written but not yet seen
// come back.
// It starts noting the IDs that come back, for confirm.
func (s *session) takeUnconfirmed() []*chatv1.Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.unconfirmed
	s.unconfirmed = nil
	s.seen = map[string]struct{}{}
	return out
}

func (s *session) restoreUnconfirmed(msgs []*chatv1.Send) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unconfirmed = append(msgs, s.unconfirmed...)
}

// confirm drops from msgs those that came back since takeUnconfirmed, and
// stops noting IDs.
func (s *session) confirm(msgs []*chatv1.Send) []*chatv1.Send {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := s.seen
	s.seen = nil
	return slices.DeleteFunc(msgs, func(m *chatv1.Send) bool {
		_, ok := seen[m.GetClientMessageId()]
		return ok
	})
}

// opened handles a stream's Opened event: it moves the resume point and
// tells the caller about the reconnection and any gap.
func (s *session) opened(op *chatv1.Opened) error {
	if op.GetRecovery() == chatv1.Recovery_RECOVERY_NOT_REQUESTED {
		// The session's first stream: JoinChatRoom reported it.
		return nil
	}
	if err := s.emit(&Connection{State: Connected, Users: usersFromProto(op.GetUsers())}); err != nil {
		return err
	}
	if op.GetRecovery() == chatv1.Recovery_RECOVERY_FAILED {
		gap := &Gap{PreviousEpoch: s.epoch, AfterSequence: s.lastSeq, Epoch: op.GetEpoch(), HeadSequence: op.GetHeadSequence()}
		s.epoch, s.lastSeq = op.GetEpoch(), op.GetHeadSequence()
		return s.emit(gap)
	}
	return nil
}

func (s *session) deliver(evs []*chatv1.Event) error {
	for _, ev := range evs {
		var out Event
		switch k := ev.GetKind().(type) {
		case *chatv1.Event_Message:
			m := k.Message
			if m.GetEpoch() == s.epoch && m.GetSequence() <= s.lastSeq {
				continue // already delivered before a reconnection
			}
			s.epoch, s.lastSeq = m.GetEpoch(), m.GetSequence()
			s.confirmed(m.GetClientMessageId())
			if s.repeated(m.GetSender(), m.GetClientMessageId()) {
				continue
			}
			out = messageFromProto(m)
		case *chatv1.Event_Presence:
			out = presenceFromProto(k.Presence)
		case *chatv1.Event_RoomDeleted:
			if err := s.emit(&RoomDeleted{At: k.RoomDeleted.GetAt().AsTime()}); err != nil {
				return err
			}
			return &Error{Kind: ErrRoomDeleted, Message: "the room's owner deleted it", Code: codes.NotFound}
		default:
			continue // Opened mid-stream or a kind this client does not know
		}
		if err := s.emit(out); err != nil {
			return err
		}
	}
	return nil
}

// recentSize is how many message IDs are remembered to drop repeats.
const recentSize = 4096

// repeated tells whether a message with this sender and client ID was
// already delivered, and remembers it.
func (s *session) repeated(sender, id string) bool {
	if id == "" {
		return false
	}
	key := sender + "\x00" + id
	if _, ok := s.recent[key]; ok {
		return true
	}
	if s.recent == nil {
		s.recent = make(map[string]struct{}, recentSize)
		s.recentRing = make([]string, recentSize)
	}
	if old := s.recentRing[s.recentNext]; old != "" {
		delete(s.recent, old)
	}
	s.recentRing[s.recentNext] = key
	s.recentNext = (s.recentNext + 1) % recentSize
	s.recent[key] = struct{}{}
	return false
}

// confirmed notes that the room recorded the message with this client ID.
func (s *session) confirmed(id string) {
	if id == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.IndexFunc(s.unconfirmed, func(m *chatv1.Send) bool { return m.GetClientMessageId() == id }); i >= 0 {
		s.unconfirmed = slices.Delete(s.unconfirmed, i, i+1)
		return
	}
	if s.seen != nil {
		s.seen[id] = struct{}{}
	}
}

// writeLoop sends resend, then what Send queues, on one stream until it is
// cancelled. Every written message stays unconfirmed until it comes back,
// so that the next stream can send it again if it was lost.
func (s *session) writeLoop(cn *conn, resend []*chatv1.Send) {
	ctx := cn.stream.Context()
	write := func(m *chatv1.Send) bool {
		return cn.stream.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: m}}) == nil
	}
	// Everything resent is unconfirmed again, in its order, ahead of what
	// Send queues next.
	s.mu.Lock()
	s.unconfirmed = append(s.unconfirmed, resend...)
	s.mu.Unlock()
	for _, m := range resend {
		if !write(m) {
			return
		}
	}
	for {
		select {
		case req := <-s.sends:
			s.mu.Lock()
			s.unconfirmed = append(s.unconfirmed, req.msg)
			s.mu.Unlock()
			ok := write(req.msg)
			req.result <- nil // the session owns the message now
			if !ok {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// delay returns the wait before retry number attempt (from 0).
func (b Backoff) delay(attempt int) time.Duration {
	d := float64(b.Initial)
	for i := 0; i < attempt && d < float64(b.Max); i++ {
		d *= b.Multiplier
	}
	d = min(d, float64(b.Max))
	if b.Jitter > 0 {
		d *= 1 + b.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}
