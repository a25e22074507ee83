package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// noRetry is what detailsOf reports for a status without RetryInfo.
const noRetry = time.Duration(-1)

// detailsOf returns a status's ErrorInfo reason ("" without one) and
// RetryInfo delay (noRetry without one), failing on an ErrorInfo of
// another domain or a detail the service does not send.
func detailsOf(t *testing.T, st *status.Status) (reason string, retry time.Duration) {
	t.Helper()
	retry = noRetry
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			assert.Equal(t, "grpcchatter.chat.v1", d.GetDomain())
			reason = d.GetReason()
		case *errdetails.RetryInfo:
			retry = d.GetRetryDelay().AsDuration()
		default:
			t.Errorf("unexpected detail %T", d)
		}
	}
	return reason, retry
}

// Every limit maps to RESOURCE_EXHAUSTED with the ErrorInfo reason the
// client acts on, and a RetryInfo exactly where a retry can succeed.
func TestLimitDetails(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		reason string
		retry  time.Duration
	}{
		{"slow consumer", rooms.ErrSlowConsumer, "SLOW_CONSUMER", noRetry},
		{"wrong passwords", &rooms.ThrottledError{What: "wrong room passwords", RetryAfter: 42 * time.Second}, "RATE_LIMITED", 42 * time.Second},
		{"create rate, wrapped", fmt.Errorf("create: %w", &rooms.ThrottledError{What: "rooms created", RetryAfter: 6 * time.Second}), "RATE_LIMITED", 6 * time.Second},
		{"rooms per user", fmt.Errorf("%w (100)", rooms.ErrTooManyRooms), "ROOM_LIMIT", noRetry},
		{"streams per user", fmt.Errorf("%w (16)", rooms.ErrTooManyStreams), "STREAM_LIMIT", 20 * time.Second},
		{"no free code", fmt.Errorf("engine: 16 tries at length 4: %w", rooms.ErrNoCode), "NO_CODE", 30 * time.Second},
		{"room full", fmt.Errorf("%w (5000)", rooms.ErrRoomFull), "ROOM_FULL", 10 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st, internal := toStatus(tc.err)
			assert.False(t, internal)
			assert.Equal(t, codes.ResourceExhausted, st.Code())
			assert.Equal(t, tc.err.Error(), st.Message())
			reason, retry := detailsOf(t, st)
			assert.Equal(t, tc.reason, reason)
			assert.Equal(t, tc.retry, retry)
		})
	}
	// Other codes carry no details.
	for _, err := range []error{rooms.ErrWrongPassword, rooms.ErrNotFound, rooms.ErrShuttingDown, rooms.Invalid("name", "bad")} {
		st, _ := toStatus(err)
		assert.Empty(t, st.Details(), "%v", err)
	}
}

// STREAM_LIMIT's retry outlasts the keepalive that drops a vanished
// stream: a client that waits it out finds its own ghost gone.
func TestStreamLimitRetryOutlastsKeepalive(t *testing.T) {
	assert.GreaterOrEqual(t, streamLimitRetry, KeepaliveTime+KeepaliveTimeout)
}

// The table itself: no RESOURCE_EXHAUSTED row without a reason, so a
// limit added later cannot come without one.
func TestEveryResourceExhaustedHasReason(t *testing.T) {
	for _, m := range codeOf {
		if m.code == codes.ResourceExhausted || m.code == codes.Aborted {
			assert.NotEmpty(t, m.reason, "%v", m.err)
		}
		if m.reason == "" {
			assert.Zero(t, m.retry, "%v: a RetryInfo without a reason", m.err)
		}
	}
}

// MAX_ROOMS_PER_USER: ROOM_LIMIT without RetryInfo, since waiting does not
// help; deleting a room does.
func TestRoomLimitReason(t *testing.T) {
	h := newHarness(t, opts{maxRooms: 1})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "a", "pw")
	_, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "b", Password: "pw"})
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "ROOM_LIMIT", reason)
	assert.Equal(t, noRetry, retry)

	_, err = h.client.DeleteChatRoom(h.ctx(ann, 5*time.Second), &chatv1.DeleteChatRoomRequest{ShortCode: code})
	require.NoError(t, err)
	h.room(ann, "b", "pw")
}

// MAX_STREAMS_PER_USER with none of the user's streams in the room on
// this instance to replace: STREAM_LIMIT with a RetryInfo of 20 s. A
// stream replaced by a newer one of its user ends ABORTED with
// STREAM_REPLACED and no RetryInfo: it must not come back.
func TestStreamLimitReason(t *testing.T) {
	refuse := &refuseStreams{}
	h := newHarness(t, opts{maxStreams: 1, wrap: func(e Engine) Engine { refuse.Engine = e; return refuse }})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	refuse.room.Store(&code)
	s := h.start(h.client, tok, 5*time.Second)
	require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
	_, err := s.recv()
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "STREAM_LIMIT", reason)
	assert.Equal(t, 20*time.Second, retry)

	refuse.room.Store(nil)
	old := h.open(h.client, tok, nil)
	h.open(h.client, tok, nil)
	var end error
	for end == nil {
		_, end = old.recv()
	}
	st = status.Convert(end)
	require.Equal(t, codes.Aborted, st.Code(), "%v", end)
	reason, retry = detailsOf(t, st)
	assert.Equal(t, "STREAM_REPLACED", reason)
	assert.Equal(t, noRetry, retry)
}

// A stream cut for falling behind: SLOW_CONSUMER, no RetryInfo (resume at
// once).
func TestSlowConsumerReason(t *testing.T) {
	h := newHarness(t, opts{queue: 4, maxBody: 4096})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	sender := h.open(h.client, h.join(ann, code, "pw"), nil)
	stalled := h.open(chatv1.NewChatServiceClient(h.dial()), h.member(code, "u2", "stalled"), nil)
	require.NotNil(t, sender.nextPresence())

	// Large bodies fill the stalled client's 64 KiB windows in a few
	// messages; then its queue of 4 overflows.
	body := strings.Repeat("x", 4000)
	left := false
	for i := 1; !left; i++ {
		require.LessOrEqual(t, i, 500, "the stalled stream was never cut")
		sender.send(fmt.Sprint(i), body)
		for {
			ev := sender.next()
			if ev.GetPresence().GetKind() == chatv1.PresenceKind_PRESENCE_KIND_LEFT {
				left = true
				break
			}
			if ev.GetMessage().GetSequence() == uint64(i) {
				break
			}
		}
	}
	var err error
	for err == nil {
		_, err = stalled.recv()
	}
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code(), "%v", err)
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "SLOW_CONSUMER", reason)
	assert.Equal(t, noRetry, retry)
}

// countingHasher counts the password hashes made.
type countingHasher struct {
	Hasher
	hashes atomic.Int64
}

func (c *countingHasher) Hash(ctx context.Context, pw string) (string, error) {
	c.hashes.Add(1)
	return c.Hasher.Hash(ctx, pw)
}

// A refused CreateChatRoom costs no password hash: invalid input, the
// create rate and MAX_ROOMS_PER_USER are all checked first.
func TestCreateRefusalsCostNoHash(t *testing.T) {
	c := &countingHasher{}
	h := newHarness(t, opts{maxRooms: 2, createBurst: 4, createInterval: time.Minute,
		hasher: func(real Hasher) Hasher { c.Hasher = real; return c }})
	ann := h.userToken("u1", "ann")
	create := func(tok, name string) *status.Status {
		_, err := h.client.CreateChatRoom(h.ctx(tok, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: name, Password: "pw"})
		return status.Convert(err)
	}
	h.room(ann, "one", "pw")
	h.room(ann, "two", "pw")
	require.EqualValues(t, 2, c.hashes.Load())

	// At the room limit: refused before hashing, twice.
	for range 2 {
		st := create(ann, "three")
		require.Equal(t, codes.ResourceExhausted, st.Code())
		reason, _ := detailsOf(t, st)
		assert.Equal(t, "ROOM_LIMIT", reason)
	}
	assert.EqualValues(t, 2, c.hashes.Load(), "ROOM_LIMIT refused before the hash")

	// The burst of 4 is spent (2 created, 2 refused): the create rate
	// refuses before even counting the rooms.
	st := create(ann, "three")
	require.Equal(t, codes.ResourceExhausted, st.Code())
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "RATE_LIMITED", reason)
	assert.InDelta(t, time.Minute.Seconds(), retry.Seconds(), 5)
	assert.Contains(t, st.Message(), "too many rooms created; retry in")

	// Invalid input costs neither a hash nor a turn of the rate.
	bob := h.userToken("u2", "bob")
	for range 5 {
		assert.Equal(t, codes.InvalidArgument, create(bob, "bad\x1bname").Code())
	}
	assert.EqualValues(t, 2, c.hashes.Load())
	h.room(bob, "bob's", "pw")
	assert.EqualValues(t, 3, c.hashes.Load(), "another user has a rate of its own")
}

// The create rate: a burst at once, then one per interval, with RetryInfo.
func TestCreateRate(t *testing.T) {
	h := newHarness(t, opts{createBurst: 3, createInterval: 6 * time.Second})
	ann := h.userToken("u1", "ann")
	for i := range 3 {
		h.room(ann, fmt.Sprint("r", i), "pw")
	}
	_, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "r3", Password: "pw"})
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "RATE_LIMITED", reason)
	assert.Greater(t, retry, 4*time.Second)
	assert.LessOrEqual(t, retry, 6*time.Second)
}

// Others' failures never lock the owner out of their own room: 12
// accounts fail 50 times, which exhausts the room's limit, and the owner
// joins at once with the right password. The attackers, and other
// members, wait out the room's window (RATE_LIMITED with RetryInfo); the
// owner is still limited by their own failures.
func TestOwnerNotLockedOut(t *testing.T) {
	h := newHarness(t, opts{})
	owner := h.userToken("owner", "olga")
	code := h.room(owner, "room", "pw")
	join := func(tok, pw string) error {
		_, err := h.client.JoinChatRoom(h.ctx(tok, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: pw})
		return err
	}
	attackers := make([]string, 12)
	for i := range attackers {
		attackers[i] = h.userToken(fmt.Sprint("a", i), fmt.Sprint("attacker", i))
	}
	for i := range 50 { // round robin: no account reaches its own limit of 5
		err := join(attackers[i%len(attackers)], fmt.Sprint("guess", i))
		require.Equal(t, codes.PermissionDenied, status.Code(err), "guess %d: %v", i, err)
	}

	require.NoError(t, join(owner, "pw"), "the owner joins at once")

	st := status.Convert(join(attackers[11], "guess"))
	require.Equal(t, codes.ResourceExhausted, st.Code(), "the room's limit holds for the attackers")
	reason, retry := detailsOf(t, st)
	assert.Equal(t, "RATE_LIMITED", reason)
	assert.InDelta(t, time.Minute.Seconds(), retry.Seconds(), 5)
	assert.Equal(t, codes.ResourceExhausted, status.Code(join(h.userToken("m1", "member"), "pw")),
		"a member who is not the owner waits too")

	// The owner's own failures: wrong answers, never the room's limit,
	// until the owner's own limit of 5 for the room.
	for i := range 5 {
		require.Equal(t, codes.PermissionDenied, status.Code(join(owner, "typo")), "owner's failure %d", i)
	}
	assert.Equal(t, codes.ResourceExhausted, status.Code(join(owner, "pw")), "the owner's own limit")
}

// A throttled user gets RATE_LIMITED for unknown codes and known rooms
// alike, so throttling does not tell codes apart.
func TestThrottledUserCannotProbeCodes(t *testing.T) {
	h := newHarness(t, opts{})
	code := h.room(h.userToken("u1", "ann"), "room", "pw")
	mallory := h.userToken("u2", "mallory")
	join := func(code string) error {
		_, err := h.client.JoinChatRoom(h.ctx(mallory, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: "x"})
		return err
	}
	for i := range 20 {
		require.Equal(t, codes.NotFound, status.Code(join("ZZZZZ"+string(rooms.Alphabet[i]))), "probe %d", i)
	}
	assert.Equal(t, codes.ResourceExhausted, status.Code(join("ZZZZZZ")))
	assert.Equal(t, codes.ResourceExhausted, status.Code(join(code)))
}

// Room names: control and formatting characters are refused naming the
// field; white space at either end is trimmed.
func TestRoomNames(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	for _, bad := range []string{"red\x1b[31m", "nul\x00", "two\nlines", "rlo\u202Etxt", "zw\u200Bsp"} {
		_, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: bad, Password: "pw"})
		st := status.Convert(err)
		assert.Equal(t, codes.InvalidArgument, st.Code(), "%q", bad)
		assert.True(t, strings.HasPrefix(st.Message(), "name: "), st.Message())
	}
	res, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "  lobby \t", Password: "pw"})
	require.NoError(t, err)
	assert.Equal(t, "lobby", res.Name)
	j, err := h.client.JoinChatRoom(h.ctx(ann, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: res.ShortCode, Password: "pw"})
	require.NoError(t, err)
	assert.Equal(t, "lobby", j.Name, "stored trimmed")
}

// Over HTTP/JSON a refusal carries the same details as over gRPC, in the
// Connect form (type, base64 value, JSON debug), and Retry-After.
func TestHTTPLimitDetails(t *testing.T) {
	h := newHarness(t, opts{tcp: true, maxRooms: 1, createBurst: 2, createInterval: time.Minute})
	w := h.web()
	ann := h.userToken("u1", "ann")
	const js = "application/json"
	st, _, _ := w.post(t, "CreateChatRoom", ann, js, `{"name":"a","password":"pw"}`)
	require.Equal(t, 200, st)

	st, body, resp := w.post(t, "CreateChatRoom", ann, js, `{"name":"b","password":"pw"}`)
	require.Equal(t, 429, st)
	assert.Equal(t, "resource_exhausted", body["code"])
	assert.Empty(t, resp.Header.Get("Retry-After"), "ROOM_LIMIT: waiting does not help")
	assert.Equal(t, []string{"ROOM_LIMIT"}, connectReasons(t, body))

	st, body, resp = w.post(t, "CreateChatRoom", ann, js, `{"name":"c","password":"pw"}`)
	require.Equal(t, 429, st)
	assert.Equal(t, []string{"RATE_LIMITED"}, connectReasons(t, body))
	assert.Equal(t, "60", resp.Header.Get("Retry-After"))
	types := []string{}
	for _, d := range body["details"].([]any) {
		types = append(types, d.(map[string]any)["type"].(string))
	}
	assert.Equal(t, []string{"google.rpc.ErrorInfo", "google.rpc.RetryInfo"}, types)
}

// connectReasons returns the ErrorInfo reasons of a Connect error body,
// checking that each detail's value decodes to its debug form.
func connectReasons(t *testing.T, body map[string]any) []string {
	t.Helper()
	var reasons []string
	details, _ := body["details"].([]any)
	for _, d := range details {
		m := d.(map[string]any)
		if m["type"] != "google.rpc.ErrorInfo" {
			continue
		}
		var info errdetails.ErrorInfo
		require.NoError(t, decodeDetail(m["value"].(string), &info))
		debug := m["debug"].(map[string]any)
		assert.Equal(t, info.GetReason(), debug["reason"])
		assert.Equal(t, "grpcchatter.chat.v1", debug["domain"])
		reasons = append(reasons, info.GetReason())
	}
	return reasons
}

// decodeDetail decodes a Connect detail's value: unpadded base64 of the
// message's protobuf encoding.
func decodeDetail(value string, m proto.Message) error {
	b, err := base64.RawStdEncoding.DecodeString(value)
	if err != nil {
		return err
	}
	return proto.Unmarshal(b, m)
}
