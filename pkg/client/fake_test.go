package client_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// fakeServices are a fake auth service (httptest) and a fake chat service
// (bufconn) that follow the services' contracts closely enough to drive the
// SDK. The examples use them too.
type fakeServices struct {
	signer *fakeSigner
	users  *fakeAuth
	auth   *httptest.Server
	chat   *fakeChat
	lis    *bufconn.Listener
	srv    *grpc.Server
	served chan struct{}
}

func startFakeServices() (*fakeServices, error) {
	signer := &fakeSigner{}
	f := &fakeServices{signer: signer, served: make(chan struct{})}
	// A clock 20s behind and 5s tokens: exp lies 15s in the past, which the
	// Client sees as expired and the chat service, allowing its leeway,
	// still accepts.
	behind := &fakeSigner{now: func() time.Time { return time.Now().Add(-20 * time.Second) }}
	f.users = &fakeAuth{signer: signer, behind: behind, users: map[string]string{}, logins: map[string]int{}}
	f.auth = httptest.NewServer(f.users.handler())
	f.chat = &fakeChat{signer: signer, epoch: "epoch-1", rooms: map[string]*fakeRoom{}, queue: 64, roomTTL: time.Hour}
	f.lis = bufconn.Listen(1 << 20)
	// A fixed flow-control window (which also turns off its growth) lets a
	// test fill it by not reading.
	f.srv = grpc.NewServer(grpc.InitialWindowSize(1<<16), grpc.InitialConnWindowSize(1<<16))
	chatv1.RegisterChatServiceServer(f.srv, f.chat)
	go func() { // ends when Close stops the server
		defer close(f.served)
		_ = f.srv.Serve(f.lis)
	}()
	return f, nil
}

// Close stops both services.
func (f *fakeServices) Close() {
	f.srv.Stop()
	<-f.served
	f.auth.Close()
}

// options wire a Client to the fakes, with quick reconnections.
func (f *fakeServices) options() []client.Option {
	return []client.Option{
		client.WithAuthURL(f.auth.URL),
		client.WithChatAddress("passthrough:///bufnet"),
		client.WithBackoff(client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}),
		client.WithDialOptions(
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return f.lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
		),
	}
}

// env is the fakes for one test, stopped at its end.
type env struct {
	*fakeServices
	t *testing.T
}

func newEnv(t *testing.T) *env {
	t.Helper()
	f, err := startFakeServices()
	require.NoError(t, err)
	t.Cleanup(f.Close)
	return &env{fakeServices: f, t: t}
}

// newClient returns a Client wired to the fakes, closed at the end of the test.
func (e *env) newClient(opts ...client.Option) *client.Client {
	e.t.Helper()
	c, err := client.New(append(e.options(), opts...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// loggedIn registers and logs in a new user.
func (e *env) loggedIn(name string, opts ...client.Option) *client.Client {
	e.t.Helper()
	c := e.newClient(opts...)
	ctx := testCtx(e.t)
	_, err := c.CreateAccount(ctx, name, "password-"+name)
	require.NoError(e.t, err)
	_, err = c.LogIn(ctx, name, "password-"+name)
	require.NoError(e.t, err)
	return c
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// fakeAuth is a small in-memory auth service.
type fakeAuth struct {
	signer *fakeSigner
	behind *fakeSigner // issues tokens that expired 15s ago

	mu     sync.Mutex
	users  map[string]string // lower-cased name → password
	logins map[string]int    // successful logins per name
	denied int               // logins answered 401
	// expired makes logins issue tokens that have already expired by the
	// Client's clock, though within the leeway the chat service allows:
	// a Client that needs a user token must log in again every time.
	expired bool
	// throttle answers that many logins 429 with Retry-After throttleFor.
	throttle    int
	throttleFor string
	throttled   time.Time // when the last 429 was answered
	loggedIn    time.Time // when the last login succeeded
}

func (a *fakeAuth) set(fn func(a *fakeAuth)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	fn(a)
}

func (a *fakeAuth) loginCount(name string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.logins[strings.ToLower(name)]
}

func (a *fakeAuth) handler() http.Handler {
	reply := func(w http.ResponseWriter, code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(v)
	}
	mux := http.NewServeMux()
	read := func(w http.ResponseWriter, r *http.Request) (string, string, bool) {
		var in struct {
			UserName string `json:"user_name"`
			Password string `json:"password"`
		}
		if json.NewDecoder(r.Body).Decode(&in) != nil || in.UserName == "" || in.Password == "" {
			reply(w, http.StatusBadRequest, map[string]string{"error": "user_name and password are required"})
			return "", "", false
		}
		return in.UserName, in.Password, true
	}
	mux.HandleFunc("POST /register", func(w http.ResponseWriter, r *http.Request) {
		name, pw, ok := read(w, r)
		if !ok {
			return
		}
		a.mu.Lock()
		defer a.mu.Unlock()
		if _, taken := a.users[strings.ToLower(name)]; taken {
			reply(w, http.StatusConflict, map[string]string{"error": "user name is taken"})
			return
		}
		a.users[strings.ToLower(name)] = pw
		reply(w, http.StatusOK, map[string]any{"id": "id-" + name, "user_name": name, "created_at": time.Now()})
	})
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		name, pw, ok := read(w, r)
		if !ok {
			return
		}
		a.mu.Lock()
		want, found := a.users[strings.ToLower(name)]
		throttle, retryAfter := a.throttle > 0 || name == "throttled", a.throttleFor
		if a.throttle > 0 {
			a.throttle--
			a.throttled = time.Now()
		}
		signer, ttl := a.signer, time.Hour
		if a.expired {
			signer, ttl = a.behind, 5*time.Second
		}
		a.mu.Unlock()
		if throttle {
			if retryAfter == "" {
				retryAfter = "7"
			}
			w.Header().Set("Retry-After", retryAfter)
			reply(w, http.StatusTooManyRequests, map[string]string{"error": "too many attempts"})
			return
		}
		if !found || want != pw {
			a.mu.Lock()
			a.denied++
			a.mu.Unlock()
			reply(w, http.StatusUnauthorized, map[string]string{"error": "invalid user name or password"})
			return
		}
		tok, exp, err := signer.IssueUser("id-"+name, name, ttl)
		if err != nil {
			reply(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		}
		a.mu.Lock()
		a.logins[strings.ToLower(name)]++
		a.loggedIn = time.Now()
		a.mu.Unlock()
		reply(w, http.StatusOK, map[string]any{"token": tok, "expires_at": exp})
	})
	return mux
}

type fakeRoom struct {
	code, name, password, owner string
	history                     []*chatv1.Message
	subs                        map[*fakeSub]struct{}
}

type fakeSub struct {
	user string
	ch   chan *chatv1.Event
	kill chan error
}

// fakeChat is a small in-memory chat service.
type fakeChat struct {
	chatv1.UnimplementedChatServiceServer
	signer *fakeSigner

	mu          sync.Mutex
	epoch       string
	rooms       map[string]*fakeRoom
	queue       int
	joins       int
	roomTTL     time.Duration
	refuseJoins bool          // JoinChatRoom answers Unauthenticated, as for an expired user token
	refuseNext  int           // JoinChatRoom answers that many Unauthenticated, as for a revoked user token
	maxBody     int           // advertised in Opened and enforced when > 0
	stall       bool          // Chat reads Open and never answers, as a wedged service
	stalled     chan struct{} // signalled (without blocking) when a stream stalls
	failResume  bool          // resumes fail within the epoch, as outside the history window
	dropSends   bool          // Sends are read and lost, as in a connection that broke
	readGate    chan struct{} // when not nil, streams read nothing until it is closed
	opens       []fakeOpen    // every Open received, in order
	// refuseRefresh answers that many Refresh frames by ending the stream
	// with refuseCode, as for a token the service does not accept.
	refuseRefresh int
	refuseCode    codes.Code
	refreshes     map[string]int // Refresh frames accepted, per user
	// refuseCreate, when set, is CreateChatRoom's answer.
	refuseCreate error
	// refuseStreams are the answers of the next Chat streams, one each,
	// given once the stream has sent Open and before Opened, as the
	// service refuses a stream at a limit.
	refuseStreams []error
	// cutOpened, when set, ends every stream right after its Opened frame.
	cutOpened error
}

// limitStatus is a refusal as the chat service makes it: the code, an
// ErrorInfo with the reason, and a RetryInfo when retry is positive.
func limitStatus(code codes.Code, reason string, retry time.Duration) error {
	st := status.New(code, strings.ToLower(reason))
	details := []protoadapt.MessageV1{&errdetails.ErrorInfo{Reason: reason, Domain: "grpcchatter.chat.v1"}}
	if retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	}
	st, err := st.WithDetails(details...)
	if err != nil {
		panic(err) // a non-OK status always takes details
	}
	return st.Err()
}

// fakeOpen is an Open a stream started with, and whose stream it was.
type fakeOpen struct {
	user string
	open *chatv1.Open
}

func bearer(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if t, ok := strings.CutPrefix(v, "Bearer "); ok {
			return t
		}
	}
	return ""
}

func (f *fakeChat) user(ctx context.Context) (fakeUser, error) {
	u, err := f.signer.VerifyUser(bearer(ctx))
	if err != nil {
		return fakeUser{}, status.Error(codes.Unauthenticated, err.Error())
	}
	return u, nil
}

func (f *fakeChat) room(ctx context.Context) (fakeRoomToken, error) {
	r, err := f.signer.VerifyRoom(bearer(ctx))
	if err != nil {
		return fakeRoomToken{}, status.Error(codes.Unauthenticated, err.Error())
	}
	return r, nil
}

func (f *fakeChat) CreateChatRoom(ctx context.Context, req *chatv1.CreateChatRoomRequest) (*chatv1.CreateChatRoomResponse, error) {
	u, err := f.user(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetName() == "" || req.GetPassword() == "" {
		return nil, status.Error(codes.InvalidArgument, "name and password are required")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refuseCreate != nil {
		return nil, f.refuseCreate
	}
	code := fmt.Sprintf("ROOM%d", len(f.rooms)+1)
	f.rooms[code] = &fakeRoom{code: code, name: req.GetName(), password: req.GetPassword(), owner: u.ID, subs: map[*fakeSub]struct{}{}}
	return &chatv1.CreateChatRoomResponse{ShortCode: code, Name: req.GetName()}, nil
}

func (f *fakeChat) JoinChatRoom(ctx context.Context, req *chatv1.JoinChatRoomRequest) (*chatv1.JoinChatRoomResponse, error) {
	u, err := f.user(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.joins++
	refuse := f.refuseJoins || f.refuseNext > 0
	f.refuseNext = max(f.refuseNext-1, 0)
	r := f.rooms[strings.ToUpper(req.GetShortCode())]
	f.mu.Unlock()
	if refuse {
		return nil, status.Error(codes.Unauthenticated, "user token expired")
	}
	if r == nil {
		return nil, status.Error(codes.NotFound, "no such room")
	}
	if r.password != req.GetPassword() {
		return nil, status.Error(codes.PermissionDenied, "wrong room password")
	}
	f.mu.Lock()
	ttl := f.roomTTL
	f.mu.Unlock()
	tok, exp, err := f.signer.IssueRoom(u.ID, u.Name, r.code, ttl)
	if err != nil {
		return nil, status.Error(codes.Internal, err.Error())
	}
	return &chatv1.JoinChatRoomResponse{Token: tok, ExpiresAt: timestamppb.New(exp), ShortCode: r.code, Name: r.name}, nil
}

func (f *fakeChat) ListChatRoomUsers(ctx context.Context, req *chatv1.ListChatRoomUsersRequest) (*chatv1.ListChatRoomUsersResponse, error) {
	rt, err := f.room(ctx)
	if err != nil {
		return nil, err
	}
	if rt.Room != req.GetShortCode() {
		return nil, status.Error(codes.PermissionDenied, "token is for another room")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rooms[rt.Room]
	if r == nil {
		return nil, status.Error(codes.NotFound, "no such room")
	}
	return &chatv1.ListChatRoomUsersResponse{Users: r.users()}, nil
}

func (f *fakeChat) DeleteChatRoom(ctx context.Context, req *chatv1.DeleteChatRoomRequest) (*chatv1.DeleteChatRoomResponse, error) {
	u, err := f.user(ctx)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rooms[req.GetShortCode()]
	if r == nil {
		return nil, status.Error(codes.NotFound, "no such room")
	}
	if r.owner != u.ID {
		return nil, status.Error(codes.PermissionDenied, "only the owner may delete the room")
	}
	delete(f.rooms, r.code)
	// Each stream ends with NOT_FOUND once it has written this event, as
	// the service's do (see Chat).
	r.broadcast(&chatv1.Event{Kind: &chatv1.Event_RoomDeleted{RoomDeleted: &chatv1.RoomDeleted{At: timestamppb.Now()}}})
	return &chatv1.DeleteChatRoomResponse{}, nil
}

func (r *fakeRoom) users() []*chatv1.RoomUser {
	count := map[string]uint32{}
	for s := range r.subs {
		count[s.user]++
	}
	var out []*chatv1.RoomUser
	for n, c := range count {
		out = append(out, &chatv1.RoomUser{UserName: n, Streams: c})
	}
	return out
}

func (r *fakeRoom) online(user string) bool {
	for s := range r.subs {
		if s.user == user {
			return true
		}
	}
	return false
}

// broadcast queues ev for every stream without blocking: a stream whose
// queue is full is ended as too slow, as the real service does.
func (r *fakeRoom) broadcast(ev *chatv1.Event) {
	for s := range r.subs {
		select {
		case s.ch <- ev:
		default:
			s.stop(limitStatus(codes.ResourceExhausted, "SLOW_CONSUMER", 0))
		}
	}
}

func (s *fakeSub) stop(err error) {
	select {
	case s.kill <- err:
	default:
	}
}

func presence(kind chatv1.PresenceKind, user string) *chatv1.Event {
	return &chatv1.Event{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{Kind: kind, UserName: user, At: timestamppb.Now()}}}
}

func (f *fakeChat) Chat(stream chatv1.ChatService_ChatServer) error {
	rt, err := f.room(stream.Context())
	if err != nil {
		return err
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	open := first.GetOpen()
	if open == nil {
		return status.Error(codes.InvalidArgument, "first message must be Open")
	}
	f.mu.Lock()
	f.opens = append(f.opens, fakeOpen{user: rt.UserName, open: open})
	if len(f.refuseStreams) > 0 {
		err := f.refuseStreams[0]
		f.refuseStreams = f.refuseStreams[1:]
		f.mu.Unlock()
		return err
	}
	cut := f.cutOpened
	if f.stall {
		f.mu.Unlock()
		select {
		case f.stalled <- struct{}{}:
		default:
		}
		<-stream.Context().Done()
		return stream.Context().Err()
	}
	r := f.rooms[rt.Room]
	if r == nil {
		f.mu.Unlock()
		return status.Error(codes.NotFound, "no such room")
	}
	sub := &fakeSub{user: rt.UserName, ch: make(chan *chatv1.Event, f.queue), kill: make(chan error, 1)}
	head := uint64(len(r.history))
	opened := &chatv1.Opened{ShortCode: r.code, Name: r.name, Epoch: f.epoch, HeadSequence: head,
		Recovery: chatv1.Recovery_RECOVERY_NOT_REQUESTED, MaxMessageBytes: uint32(f.maxBody),
		TokenExpiresAt: timestamppb.New(rt.ExpiresAt)}
	frame := []*chatv1.Event{{Kind: &chatv1.Event_Opened{Opened: opened}}}
	// The backlog follows in a frame of its own, as a service reading its
	// history separately might send it.
	var backlog []*chatv1.Event
	if res := open.GetResume(); res == nil && open.GetBacklog() > 0 {
		n := min(int(open.GetBacklog()), len(r.history))
		opened.Backlog = uint32(n)
		for _, m := range r.history[len(r.history)-n:] {
			backlog = append(backlog, &chatv1.Event{Kind: &chatv1.Event_Message{Message: m}})
		}
	} else if res != nil {
		if res.GetEpoch() == f.epoch && res.GetAfterSequence() <= head && !f.failResume {
			opened.Recovery = chatv1.Recovery_RECOVERY_COMPLETE
			for _, m := range r.history[res.GetAfterSequence():] {
				frame = append(frame, &chatv1.Event{Kind: &chatv1.Event_Message{Message: m}})
			}
		} else {
			// As the service does: what it holds after the point follows,
			// every message of its epoch when the point is from another.
			opened.Recovery = chatv1.Recovery_RECOVERY_FAILED
			from := uint64(0)
			if res.GetEpoch() == f.epoch {
				from = min(res.GetAfterSequence(), head)
			}
			for _, m := range r.history[from:] {
				frame = append(frame, &chatv1.Event{Kind: &chatv1.Event_Message{Message: m}})
			}
		}
	}
	if !r.online(sub.user) {
		r.broadcast(presence(chatv1.PresenceKind_PRESENCE_KIND_JOINED, sub.user))
	}
	r.subs[sub] = struct{}{}
	opened.Users = r.users()
	f.mu.Unlock()

	defer func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		delete(r.subs, sub)
		if !r.online(sub.user) {
			r.broadcast(presence(chatv1.PresenceKind_PRESENCE_KIND_LEFT, sub.user))
		}
	}()
	if err := stream.Send(&chatv1.ChatResponse{Events: frame}); err != nil {
		return err
	}
	if cut != nil {
		return cut
	}
	if len(backlog) > 0 {
		if err := stream.Send(&chatv1.ChatResponse{Events: backlog}); err != nil {
			return err
		}
	}
	// The stream ends when its room token expires, exactly then, unless a
	// Refresh replaced the token.
	expiry := time.NewTimer(time.Until(rt.ExpiresAt))
	defer expiry.Stop()
	refreshed := make(chan time.Time)
	readErr := make(chan error, 1)
	// The reader lives until the stream ends, which returning from this
	// handler causes.
	go func() {
		for {
			if !f.waitReads(stream.Context()) {
				readErr <- stream.Context().Err()
				return
			}
			req, err := stream.Recv()
			if err != nil {
				readErr <- err
				return
			}
			if snd := req.GetSend(); snd != nil {
				if err := f.receive(r, sub.user, snd); err != nil {
					readErr <- err
					return
				}
			}
			if ref := req.GetRefresh(); ref != nil {
				exp, err := f.refresh(rt, ref)
				if err != nil {
					readErr <- err
					return
				}
				select {
				case refreshed <- exp:
				case <-stream.Context().Done():
					readErr <- stream.Context().Err()
					return
				}
			}
		}
	}()
	for {
		select {
		case ev := <-sub.ch:
			if err := stream.Send(&chatv1.ChatResponse{Events: []*chatv1.Event{ev}}); err != nil {
				return err
			}
			if ev.GetRoomDeleted() != nil {
				// Ended after the event, not beside it: a separate end
				// signal could win a select against the queued event.
				return status.Error(codes.NotFound, "room deleted")
			}
		case <-expiry.C:
			return status.Error(codes.Unauthenticated, "room token expired")
		case exp := <-refreshed:
			expiry.Reset(time.Until(exp))
			ev := &chatv1.Event{Kind: &chatv1.Event_Refreshed{Refreshed: &chatv1.Refreshed{ExpiresAt: timestamppb.New(exp)}}}
			if err := stream.Send(&chatv1.ChatResponse{Events: []*chatv1.Event{ev}}); err != nil {
				return err
			}
		case err := <-sub.kill:
			return err
		case err := <-readErr:
			if _, ok := status.FromError(err); ok {
				return err
			}
			return nil
		}
	}
}

// refresh checks a Refresh as the service does: the new token must be
// valid and for the stream's room and user. It returns the new expiry.
func (f *fakeChat) refresh(rt fakeRoomToken, ref *chatv1.Refresh) (time.Time, error) {
	f.mu.Lock()
	refuse, code := f.refuseRefresh > 0, f.refuseCode
	f.refuseRefresh = max(f.refuseRefresh-1, 0)
	f.mu.Unlock()
	if refuse {
		return time.Time{}, status.Error(code, "refresh refused")
	}
	nt, err := f.signer.VerifyRoom(ref.GetToken())
	if err != nil {
		return time.Time{}, status.Error(codes.Unauthenticated, err.Error())
	}
	if nt.Room != rt.Room || nt.UserID != rt.UserID {
		return time.Time{}, status.Error(codes.PermissionDenied, "token is for another room or user")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.refreshes == nil {
		f.refreshes = map[string]int{}
	}
	f.refreshes[rt.UserName]++
	return nt.ExpiresAt, nil
}

// refreshCount counts the Refresh frames accepted from user.
func (f *fakeChat) refreshCount(user string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refreshes[user]
}

// opened returns the Opens of user's streams, in order.
func (f *fakeChat) opened(user string) []*chatv1.Open {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*chatv1.Open
	for _, o := range f.opens {
		if o.user == user {
			out = append(out, o.open)
		}
	}
	return out
}

// say posts a message to the room as user, as if sent on a stream.
func (f *fakeChat) say(code, user, body string) {
	f.mu.Lock()
	r := f.rooms[code]
	f.mu.Unlock()
	f.post(r, user, &chatv1.Send{ClientMessageId: newID(), Body: body})
}

// broadcastRaw sends ev to every stream in the room.
func (f *fakeChat) broadcastRaw(code string, ev *chatv1.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rooms[code].broadcast(ev)
}

var lastID atomic.Int64

func newID() string { return fmt.Sprint("fake-", lastID.Add(1)) }

// waitReads blocks while reads are paused; false means the stream ended.
func (f *fakeChat) waitReads(ctx context.Context) bool {
	f.mu.Lock()
	gate := f.readGate
	f.mu.Unlock()
	if gate == nil {
		return true
	}
	select {
	case <-gate:
		return true
	case <-ctx.Done():
		return false
	}
}

// pauseReads stops every stream reading Sends until resume is called.
func (f *fakeChat) pauseReads() (resume func()) {
	gate := make(chan struct{})
	f.mu.Lock()
	f.readGate = gate
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.readGate = nil
		f.mu.Unlock()
		close(gate)
	}
}

// receive handles a Send as the service does: it refuses an invalid body
// (ending the stream) and ignores an ID the user already used in the
// room's history.
//
// The check and the post are one step, as in the service: a message that
// a stream being cut still posts while the Client sends it again on the
// next one is recorded once.
func (f *fakeChat) receive(r *fakeRoom, user string, snd *chatv1.Send) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	repeat := snd.GetClientMessageId() != "" && slices.ContainsFunc(r.history, func(m *chatv1.Message) bool {
		return m.GetSender() == user && m.GetClientMessageId() == snd.GetClientMessageId()
	})
	switch {
	case snd.GetBody() == "poison" || (f.maxBody > 0 && len(snd.GetBody()) > f.maxBody):
		return status.Error(codes.InvalidArgument, "body: refused")
	case f.dropSends || repeat:
		return nil
	}
	f.postLocked(r, user, snd)
	return nil
}

func (f *fakeChat) set(fn func(f *fakeChat)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func (f *fakeChat) post(r *fakeRoom, user string, snd *chatv1.Send) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.postLocked(r, user, snd)
}

// postLocked is post with f.mu held.
func (f *fakeChat) postLocked(r *fakeRoom, user string, snd *chatv1.Send) {
	m := &chatv1.Message{
		Sequence: uint64(len(r.history)) + 1, Epoch: f.epoch, SentAt: timestamppb.Now(),
		Sender: user, Body: snd.GetBody(), ClientMessageId: snd.GetClientMessageId(),
	}
	r.history = append(r.history, m)
	r.broadcast(&chatv1.Event{Kind: &chatv1.Event_Message{Message: m}})
}

// killStreams ends every open stream with err, or only those of the
// users named.
func (f *fakeChat) killStreams(err error, users ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rooms {
		for s := range r.subs {
			if len(users) == 0 || slices.Contains(users, s.user) {
				s.stop(err)
			}
		}
	}
}

// restart simulates a service restart: streams end with Unavailable, and
// the rooms come back in a new epoch with no history.
func (f *fakeChat) restart(epoch string) {
	f.killStreams(status.Error(codes.Unavailable, "server shutting down"))
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch = epoch
	for _, r := range f.rooms {
		r.history = nil
	}
}

func (f *fakeChat) setQueue(n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queue = n
}

func (f *fakeChat) joinCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.joins
}

func (f *fakeChat) setRefuseJoins(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.refuseJoins = v
}

// streamCount counts open streams in a room.
func (f *fakeChat) streamCount(code string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r := f.rooms[code]; r != nil {
		return len(r.subs)
	}
	return 0
}

// handedOver tells whether the room holds n messages and none of them waits
// in user's stream queues: the service has handed every one to user's
// streams, which take more only as their client reads them.
func (f *fakeChat) handedOver(code, user string, n int) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.rooms[code]
	if r == nil || len(r.history) < n {
		return false
	}
	for s := range r.subs {
		if s.user == user && len(s.ch) > 0 {
			return false
		}
	}
	return true
}
