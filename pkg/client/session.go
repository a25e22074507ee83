package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// refreshWindow is how long before its expiry a token (room or user) that
// lives ttl is renewed: 30s, or a third of its life for short-lived tokens,
// so that a token is not renewed on every use. The services accept a token
// for a leeway (30 s) past its expiry, but the Client renews by its own view
// of the expiry rather than wait for a refusal.
func refreshWindow(ttl time.Duration) time.Duration {
	return min(30*time.Second, ttl/3)
}

// session is one joined room: its stream, kept open across breaks by the run
// goroutine.
type session struct {
	c         *Client
	log       *slog.Logger
	shortCode string

	ctx    context.Context // cancelled by Leave, Disconnect or Close
	cancel context.CancelFunc
	in     *inbox            // pushed to by run only, which never waits for Receive
	sends  chan *chatv1.Send // read by the current connection's writer
	done   chan struct{}     // closed when run has returned

	mu        sync.Mutex
	password  string // the room's, to renew the room token; cleared when the session ends
	roomToken string
	roomExp   time.Time
	refresh   time.Duration // renew the room token this long before roomExp
	maxBody   int           // the service's body limit from Opened, 0 if unknown
	err       error         // why the session ended; set before done is closed
	// broken is why the stream is down, nil while it is open and its
	// writer takes messages: what Send reports when it cannot wait longer.
	broken error
	// unconfirmed are messages written to a stream and not yet seen come
	// back; seen, while a reconnection replays, the IDs that came back.
	unconfirmed []*chatv1.Send
	seen        map[string]struct{}

	// Owned by the run goroutine (and by join before it starts).
	epoch   string
	lastSeq uint64
	// backlog is how many earlier messages the first stream asks for;
	// join zeroes it once that stream is open, since a stream
	// reopened later resumes instead.
	backlog uint32
	// Messages up to earlierSeq in earlierEpoch were sent before the
	// session joined: they are the backlog, and marked Earlier.
	earlierEpoch string
	earlierSeq   uint64
	// rejected is why the service ended the last stream as invalid, which
	// a message it refused causes; nil otherwise. The next stream's replay
	// tells which message that was: the first one still unconfirmed.
	rejected error
}

// conn is one Chat stream.
type conn struct {
	stream grpc.BidiStreamingClient[chatv1.ChatRequest, chatv1.ChatResponse]
	cancel context.CancelFunc
	opened *chatv1.Opened
	// previousEpoch is the session's epoch when the stream opened.
	previousEpoch string
	rest          []*chatv1.Event // events that came in the Opened frame
	// refreshes carry new room tokens from the refresher to the writer, the
	// stream's only sender; refreshed carries the expiry of each Refreshed
	// event from the reader back to the refresher.
	refreshes chan string
	refreshed chan time.Time
	// refreshing is set while a Refresh is on its way and not confirmed.
	refreshing atomic.Bool
}

func newSession(c *Client, adm roomAdmission, password string) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		c:         c,
		log:       c.cfg.logger.With(slog.String("room", adm.shortCode)),
		shortCode: adm.shortCode,
		password:  password,
		ctx:       ctx,
		cancel:    cancel,
		in:        newInbox(c.cfg.bufferSize),
		sends:     make(chan *chatv1.Send),
		done:      make(chan struct{}),
		roomToken: adm.token,
		roomExp:   adm.expiresAt,
		refresh:   refreshWindow(time.Until(adm.expiresAt)),
		backlog:   uint32(min(c.cfg.backlog, math.MaxUint32)),
	}
}

// start hands the first stream to the run goroutine, which lives until the
// session ends (Leave, Disconnect, Close, or a terminal error) and closes done.
func (s *session) start(first *conn) {
	go s.run(first)
}

// leave ends the session: its stream closes, so the others see the caller
// leave, and run stops reconnecting. It waits for run within ctx.
func (s *session) leave(ctx context.Context) error {
	s.cancel()
	select {
	case <-s.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// listUsers lists the users online in the room.
func (s *session) listUsers(ctx context.Context) ([]User, error) {
	if s.ctx.Err() != nil {
		return nil, ErrDisconnected
	}
	tok, err := s.freshRoomToken(ctx)
	if err != nil {
		return nil, err
	}
	return s.c.listRPC(ctx, tok, s.shortCode)
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

// receive returns the next event in the inbox, waiting for one within
// ctx. Once the session has ended it returns what is left, then why it
// ended.
func (s *session) receive(ctx context.Context) (Event, error) {
	for {
		if s.ctx.Err() != nil {
			return nil, ErrDisconnected
		}
		if ev, ok := s.in.pop(); ok {
			return ev, nil
		}
		select {
		case <-s.in.ready:
		case <-s.done:
			// run has pushed its last event before closing done.
			if ev, ok := s.in.pop(); ok {
				return ev, nil
			}
			return nil, s.finalErr()
		case <-s.ctx.Done():
			return nil, ErrDisconnected
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// send checks body and hands it to the current stream's writer, waiting
// within ctx while there is none. Once the writer has it the session owns
// it: it is written, and written again after a reconnection until it is
// confirmed or reported, so send returns its ID whatever ctx does next.
// An error says why the message was not sent.
func (s *session) send(ctx context.Context, body string) (string, error) {
	limit := s.bodyLimit()
	switch {
	case body == "":
		return "", s.notSent(&Error{Kind: ErrInvalidArgument, Message: "message body is empty"})
	case len(body) > limit:
		return "", s.notSent(&Error{Kind: ErrInvalidArgument, Message: fmt.Sprintf("message body is %d bytes, more than the %d the room accepts", len(body), limit)})
	case !utf8.ValidString(body):
		return "", s.notSent(&Error{Kind: ErrInvalidArgument, Message: "message body is not valid UTF-8"})
	}
	if s.ctx.Err() != nil {
		return "", s.notSent(ErrDisconnected)
	}
	msg := &chatv1.Send{ClientMessageId: newMessageID(), Body: body}
	select {
	case s.sends <- msg:
		return msg.GetClientMessageId(), nil
	case <-s.done:
		return "", s.notSent(s.finalErr())
	case <-s.ctx.Done():
		return "", s.notSent(ErrDisconnected)
	case <-ctx.Done():
		s.mu.Lock()
		broken := s.broken
		s.mu.Unlock()
		if broken != nil {
			return "", fmt.Errorf("client: message not sent to room %s: %w waiting for the stream to reconnect after: %w", s.shortCode, ctx.Err(), broken)
		}
		// The writer is still writing earlier messages: the service is
		// not reading the stream as fast as the caller sends.
		return "", fmt.Errorf("client: message not sent to room %s: %w waiting for the chat service to take the messages sent before it", s.shortCode, ctx.Err())
	}
}

// notSent says that a message was not sent to the room, and why.
func (s *session) notSent(why error) error {
	return fmt.Errorf("client: message not sent to room %s: %w", s.shortCode, why)
}

// bodyLimit is the longest body Send accepts: the service's advertised
// limit once known, or else the configured one; a limit set with
// WithMaxMessageBytes caps either.
func (s *session) bodyLimit() int {
	s.mu.Lock()
	server := s.maxBody
	s.mu.Unlock()
	cfg := s.c.cfg
	switch {
	case server <= 0:
		return cfg.maxMessage
	case cfg.maxMessageSet:
		return min(server, cfg.maxMessage)
	}
	return server
}

// freshRoomToken returns the room token, renewing it first when it is about
// to expire.
func (s *session) freshRoomToken(ctx context.Context) (string, error) {
	s.mu.Lock()
	tok, exp, window := s.roomToken, s.roomExp, s.refresh
	s.mu.Unlock()
	if exp.IsZero() || time.Until(exp) > window {
		return tok, nil
	}
	if err := s.rejoin(ctx); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.roomToken, nil
}

// expireRoomToken marks the room token as one to renew before its next
// use: the service refused it.
func (s *session) expireRoomToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roomExp = time.Now()
}

// rejoin gets a new room token with the saved room password and the user
// token, which the Client renews first if it must and can (see userToken).
func (s *session) rejoin(ctx context.Context) error {
	_, err := s.renewRoomToken(ctx)
	return err
}

// renewRoomToken is rejoin, returning the new room token.
func (s *session) renewRoomToken(ctx context.Context) (roomAdmission, error) {
	s.mu.Lock()
	password := s.password
	s.mu.Unlock()
	adm, err := s.c.joinRPC(ctx, s.shortCode, password)
	if err != nil {
		return roomAdmission{}, err
	}
	s.mu.Lock()
	s.roomToken, s.roomExp = adm.token, adm.expiresAt
	s.refresh = refreshWindow(time.Until(adm.expiresAt))
	s.mu.Unlock()
	s.log.Debug("room token renewed", slog.Time("expires_at", adm.expiresAt))
	return adm, nil
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
	} else {
		open.Backlog = s.backlog
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
	return &conn{stream: stream, cancel: cancel, opened: evs[0].GetOpened(), rest: evs[1:], previousEpoch: s.epoch,
		refreshes: make(chan string), refreshed: make(chan time.Time, 1)}, nil
}

// end records why the session ended and tells Receive.
func (s *session) end(err error) {
	s.mu.Lock()
	s.err = err
	s.broken = err
	s.password = ""
	s.mu.Unlock()
	close(s.done)
}

// emit hands an event to Receive. It never waits: a full inbox drops its
// oldest event instead (see inbox), so that the stream is read, and Send
// served, whether or not the application reads. It returns an error once
// the session is cancelled, to stop the caller early.
func (s *session) emit(ev Event) error {
	s.in.push(ev)
	return s.ctx.Err()
}

// setBroken records why the stream is down, or nil once it is open again.
func (s *session) setBroken(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = err
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
		s.setBroken(err)
		if isTerminal(err) {
			s.log.Info("session ended", slog.Any("error", err))
			s.end(err)
			return
		}
		if errors.Is(err, ErrInvalidArgument) {
			s.rejected = err
		}
		if errors.Is(err, ErrUnauthenticated) {
			// The room token expired (the service ends a stream when its
			// token does) or was rejected: renew it once, right away,
			// logging in again first if the user token needs it and the
			// Client can. A second refusal of a fresh room token means
			// the user is no longer admitted.
			if renewed {
				s.end(err)
				return
			}
			s.expireRoomToken()
			rerr := s.attempt(s.rejoin)
			if rerr == nil {
				renewed = true
			} else if errors.Is(rerr, ErrUnauthenticated) {
				s.end(rerr)
				return
			} else {
				err = rerr
				continue
			}
		} else {
			if errors.Is(err, ErrSlowConsumer) {
				// Falling behind is the reader's doing, not the service
				// failing, and a resume makes progress: resume at once,
				// after the first delay, whatever came before.
				attempt = 0
			}
			delay := s.c.cfg.backoff.delay(attempt)
			// A limit (a throttle, the stream limit, a full room) says
			// when a retry can succeed: wait that long (capped by
			// MaxRetryAfter), never less than the backoff.
			if d, ok := RetryAfter(err); ok && d > delay {
				delay = d
			}
			s.log.Info("chat stream broke; reconnecting", slog.Any("error", err), slog.Int("attempt", attempt), slog.Duration("retry_in", delay))
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
		var cn *conn
		if err = s.attempt(func(ctx context.Context) (oerr error) {
			cn, oerr = s.open(ctx)
			return oerr
		}); err != nil {
			continue
		}
		renewed = false
		s.log.Info("chat stream reopened", slog.String("epoch", cn.opened.GetEpoch()), slog.String("recovery", cn.opened.GetRecovery().String()))
		opened := time.Now()
		err = s.serve(cn)
		// Only a stream that stayed up starts the delays over: one cut
		// right after it opened (a service that accepts and then fails,
		// a limit enforced after Opened) keeps backing off.
		if time.Since(opened) >= s.c.cfg.backoff.ResetAfter {
			attempt = 0
		}
	}
}

// attempt runs one reconnection step (renewing the token, opening the
// stream) within the attempt timeout, so that a service that accepts the
// connection but never answers cannot wedge the session. A step that runs
// out of time failed as if the service were unavailable.
func (s *session) attempt(step func(context.Context) error) error {
	d := s.c.cfg.openTimeout
	ctx, cancel := context.WithTimeout(s.ctx, d)
	defer cancel()
	err := step(ctx)
	if err != nil && s.ctx.Err() == nil && ctx.Err() != nil {
		return attemptTimedOut(d)
	}
	return err
}

func attemptTimedOut(d time.Duration) error {
	return &Error{Kind: ErrUnavailable, Code: codes.DeadlineExceeded,
		Message: fmt.Sprintf("the chat service did not open the stream within %s", d)}
}

// serve delivers a stream's events until it breaks, with a writer goroutine
// sending what Send queues. It returns why the stream ended.
//
// After a reconnection the writer starts only once the replay is through:
// messages written on the old stream that the replay does not show were
// never recorded, and are sent again first, in their order.
func (s *session) serve(cn *conn) error {
	defer cn.cancel()
	s.mu.Lock()
	s.maxBody = int(cn.opened.GetMaxMessageBytes())
	s.mu.Unlock()
	resend := s.takeUnconfirmed()
	// After a gap in the same epoch the replay cannot tell which messages
	// the service recorded. Sending them all again is safe, since the
	// service ignores an ID it has recorded; but those it ignores never
	// come back, so they are reported with the Gap instead of tracked.
	untracked := cn.opened.GetRecovery() == chatv1.Recovery_RECOVERY_FAILED && cn.opened.GetEpoch() == cn.previousEpoch
	if cn.opened.GetRecovery() != chatv1.Recovery_RECOVERY_COMPLETE {
		// Without a replay the refused message cannot be told from the
		// others: they are all sent again, and should the service refuse it
		// again, the next replay tells.
		s.rejected = nil
	}
	err := s.opened(cn.opened, untracked, resend)
	if err == nil {
		err = s.deliver(cn, cn.rest)
	}
	for err == nil && cn.opened.GetRecovery() == chatv1.Recovery_RECOVERY_COMPLETE && s.lastSeq < cn.opened.GetHeadSequence() {
		err = s.recv(cn)
	}
	resend = s.confirm(resend)
	if err == nil && s.rejected != nil {
		// The service reads a stream's messages in order and recorded every
		// one before the refused message, so the replay confirmed them: the
		// first message left is the one refused. Only it is dropped.
		if len(resend) > 0 {
			failed := resend[0]
			resend = resend[1:]
			s.log.Warn("the service refused a message", slog.String("client_message_id", failed.GetClientMessageId()), slog.Any("error", s.rejected))
			err = s.emit(&SendFailed{ClientMessageID: failed.GetClientMessageId(), Body: failed.GetBody(), Err: s.rejected})
		}
		if err == nil {
			s.rejected = nil
		}
	}
	if err != nil {
		s.restoreUnconfirmed(resend)
		return err
	}
	if len(resend) > 0 {
		s.log.Debug("sending unconfirmed messages again", slog.Int("count", len(resend)), slog.Bool("after_gap", untracked))
	}
	s.setBroken(nil)
	var wg sync.WaitGroup
	wg.Add(2)
	// The writer and the refresher live until this stream is cancelled,
	// which serve does on its way out; serve waits for them.
	go func() {
		defer wg.Done()
		s.writeLoop(cn, resend, !untracked)
	}()
	go func() {
		defer wg.Done()
		s.refreshLoop(cn)
	}()
	for err == nil {
		err = s.recv(cn)
	}
	cn.cancel()
	wg.Wait()
	return refreshRefused(cn, err)
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
		return streamError(err)
	}
	return s.deliver(cn, resp.GetEvents())
}

// streamError is fromGRPC for a broken Chat stream. A service that gives
// no reason (a version before reasons) ends a stream with
// RESOURCE_EXHAUSTED and no retry delay when it fell behind: a slow
// consumer, not a rate limit.
func streamError(err error) error {
	err = fromGRPC(err)
	var e *Error
	if errors.As(err, &e) && e.Code == codes.ResourceExhausted && e.Reason == "" && e.RetryAfter == 0 {
		e.Kind = ErrSlowConsumer
	}
	return err
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
// tells the caller about the reconnection and any gap. unconfirmed are the
// caller's messages whose fate a gap in the same epoch hides.
func (s *session) opened(op *chatv1.Opened, sameEpochGap bool, unconfirmed []*chatv1.Send) error {
	if op.GetRecovery() == chatv1.Recovery_RECOVERY_NOT_REQUESTED {
		// The session's first stream: the join reported it.
		return nil
	}
	if err := s.emit(&Connection{State: Connected, Users: usersFromProto(op.GetUsers())}); err != nil {
		return err
	}
	if op.GetRecovery() == chatv1.Recovery_RECOVERY_FAILED {
		gap := &Gap{PreviousEpoch: s.epoch, AfterSequence: s.lastSeq, Epoch: op.GetEpoch(), HeadSequence: op.GetHeadSequence()}
		if sameEpochGap {
			for _, m := range unconfirmed {
				gap.Unconfirmed = append(gap.Unconfirmed, m.GetClientMessageId())
			}
		}
		// What the service still holds after the point follows: from the
		// start of a new epoch, or after the last message delivered in
		// this one.
		if op.GetEpoch() != s.epoch {
			s.epoch, s.lastSeq = op.GetEpoch(), 0
		}
		return s.emit(gap)
	}
	return nil
}

// deliver hands a stream's events to Receive, and Refreshed events to the
// stream's refresher.
func (s *session) deliver(cn *conn, evs []*chatv1.Event) error {
	for _, ev := range evs {
		var out Event
		switch k := ev.GetKind().(type) {
		case *chatv1.Event_Message:
			m := k.Message
			// A message's identity is its place in the room: (epoch,
			// sequence). Client message IDs are the sender's, and two
			// senders may well pick the same one.
			if m.GetEpoch() == s.epoch && m.GetSequence() <= s.lastSeq {
				continue // already delivered before a reconnection
			}
			s.epoch, s.lastSeq = m.GetEpoch(), m.GetSequence()
			s.confirmed(m.GetClientMessageId())
			msg := messageFromProto(m)
			msg.Earlier = m.GetEpoch() == s.earlierEpoch && m.GetSequence() <= s.earlierSeq
			out = msg
		case *chatv1.Event_Presence:
			out = presenceFromProto(k.Presence)
		case *chatv1.Event_RoomDeleted:
			if err := s.emit(&RoomDeleted{At: k.RoomDeleted.GetAt().AsTime()}); err != nil {
				return err
			}
			return &Error{Kind: ErrRoomDeleted, Message: "the room's owner deleted it", Code: codes.NotFound}
		case *chatv1.Event_Refreshed:
			var exp time.Time
			if at := k.Refreshed.GetExpiresAt(); at != nil {
				exp = at.AsTime()
			}
			// At most one Refresh is outstanding, so the buffer has room
			// for its answer; one nobody asked for is dropped.
			select {
			case cn.refreshed <- exp:
			default:
			}
			continue
		default:
			continue // Opened mid-stream or a kind this client does not know
		}
		if err := s.emit(out); err != nil {
			return err
		}
	}
	return nil
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

// writeLoop sends resend, then what Send queues and the refresher's
// Refresh frames, on one stream until it is cancelled. Every message Send
// queued stays unconfirmed until it comes back, so that the next stream can
// send it again if it was lost; resend is tracked the same way unless track
// is false (after a gap, see serve).
func (s *session) writeLoop(cn *conn, resend []*chatv1.Send, track bool) {
	ctx := cn.stream.Context()
	write := func(m *chatv1.Send) bool {
		return cn.stream.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: m}}) == nil
	}
	if track {
		// Everything resent is unconfirmed again, in its order, ahead of
		// what Send queues next.
		s.mu.Lock()
		s.unconfirmed = append(s.unconfirmed, resend...)
		s.mu.Unlock()
	}
	for _, m := range resend {
		if !write(m) {
			return
		}
	}
	for {
		select {
		case m := <-s.sends:
			s.mu.Lock()
			s.unconfirmed = append(s.unconfirmed, m)
			s.mu.Unlock()
			if !write(m) {
				return
			}
		case tok := <-cn.refreshes:
			if cn.stream.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Refresh{Refresh: &chatv1.Refresh{Token: tok}}}) != nil {
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
