package api

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// panicky is an engine whose Users and Publish panic.
type panicky struct{ Engine }

func (panicky) Users(context.Context, string) ([]rooms.User, error) { panic("users boom") }
func (panicky) Publish(context.Context, string, rooms.Member, string, string) (uint64, error) {
	panic("publish boom")
}

// A panic in a handler, or in a goroutine of a Chat stream, is answered
// Internal and logged with its stack; the service keeps serving.
func TestPanicRecovered(t *testing.T) {
	core, logs := observer.New(zap.ErrorLevel)
	h := newHarness(t, opts{wrap: func(e Engine) Engine { return panicky{e} }, logger: zap.New(core)})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")

	_, err := h.client.ListChatRoomUsers(h.ctx(tok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
	assert.Equal(t, codes.Internal, status.Code(err))
	assert.Equal(t, "internal error", status.Convert(err).Message(), "no panic detail for the client")

	s := h.open(h.client, tok, nil)
	s.send("c1", "hello")
	assert.Equal(t, codes.Internal, s.end())

	// Still serving.
	h.room(ann, "another", "pw")
	assert.Equal(t, 2.0, testutil.ToFloat64(h.srv.cfg.Metrics.Panics))
	panics := logs.FilterMessage("panic").All()
	require.Len(t, panics, 2)
	for _, p := range panics {
		assert.Contains(t, p.ContextMap()["stack"], "panicky", "the stack names where it panicked")
		assert.NotEmpty(t, p.ContextMap()["request_id"])
	}
	assert.Contains(t, panics[0].ContextMap()["panic"], "users boom")
	assert.Contains(t, panics[1].ContextMap()["panic"], "publish boom")
}

// Every call gets a request ID in its response headers and its log line;
// a sane one from the client is kept, anything else replaced.
func TestRequestID(t *testing.T) {
	core, logs := observer.New(zap.InfoLevel)
	h := newHarness(t, opts{logger: zap.New(core)})
	ann := h.userToken("u1", "ann")
	hexID := regexp.MustCompile(`^[0-9a-f]{16}$`)
	for _, tc := range []struct{ name, sent, want string }{
		{"none", "", ""},
		{"kept", "req-42.a_B", "req-42.a_B"},
		{"unsafe replaced", `a b";c`, ""},
		{"too long replaced", strings.Repeat("a", 65), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := h.ctx(ann, 5*time.Second)
			if tc.sent != "" {
				ctx = metadata.AppendToOutgoingContext(ctx, requestIDKey, tc.sent)
			}
			var hdr metadata.MD
			_, err := h.client.CreateChatRoom(ctx, &chatv1.CreateChatRoomRequest{Name: "r", Password: "pw"}, grpc.Header(&hdr))
			require.NoError(t, err)
			got := hdr.Get(requestIDKey)
			require.Len(t, got, 1)
			if tc.want != "" {
				assert.Equal(t, tc.want, got[0])
			} else {
				assert.Regexp(t, hexID, got[0])
			}
			calls := logs.FilterField(zap.String("request_id", got[0])).All()
			require.Len(t, calls, 1, "the log line carries the same ID")
			assert.Equal(t, "/grpcchatter.chat.v1.ChatService/CreateChatRoom", calls[0].ContextMap()["method"])
		})
	}

	// Streams send it in their headers too.
	code := h.room(ann, "room", "pw")
	s := h.open(h.client, h.join(ann, code, "pw"), nil)
	hdr, err := s.c.Header()
	require.NoError(t, err)
	assert.Regexp(t, hexID, hdr.Get(requestIDKey)[0])
}

// Every call is counted by method and code, and timed.
func TestRPCMetrics(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	_, err := h.client.JoinChatRoom(h.ctx(ann, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: "wrong"})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	const svc = "/grpcchatter.chat.v1.ChatService/"
	m := h.srv.cfg.Metrics
	assert.Equal(t, 1.0, testutil.ToFloat64(m.RPCs.WithLabelValues(svc+"CreateChatRoom", "OK")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.RPCs.WithLabelValues(svc+"JoinChatRoom", "PermissionDenied")))
	assert.Zero(t, testutil.ToFloat64(m.RPCs.WithLabelValues(svc+"JoinChatRoom", "OK")))
	assert.Equal(t, 2, testutil.CollectAndCount(m.RPCSeconds), "one series per method")
}

// A stream renews its room token in-band: it outlives the first token,
// with no presence change, and a bad Refresh ends it with the status of
// the token's fault.
func TestRefresh(t *testing.T) {
	h := newHarness(t, opts{realExpiry: true})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	other := h.room(ann, "other", "pw")
	issue := func(userID, name, room string, ttl time.Duration) string {
		tok, _, err := h.signer.IssueRoom(userID, name, room, ttl)
		require.NoError(t, err)
		return tok
	}
	refresh := func(s *stream, tok string) {
		require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Refresh{Refresh: &chatv1.Refresh{Token: tok}}}))
	}

	t.Run("outlives the first token", func(t *testing.T) {
		s := h.open(h.client, issue("u1", "ann", code, 1500*time.Millisecond), nil)
		first := s.opened.GetTokenExpiresAt().AsTime()
		assert.WithinDuration(t, time.Now().Add(time.Second), first, time.Second)
		watcher := h.open(h.client, issue("u2", "bob", code, time.Hour), nil)

		assert.Equal(t, "bob", s.nextPresence().UserName)
		refresh(s, issue("u1", "ann", code, time.Hour))
		ev := s.next()
		require.NotNil(t, ev.GetRefreshed(), "got %v", ev)
		assert.True(t, ev.GetRefreshed().GetExpiresAt().AsTime().After(first.Add(50*time.Minute)))

		time.Sleep(time.Until(first) + 500*time.Millisecond)
		s.send("c1", "still here")
		m := s.nextMessage()
		assert.Equal(t, "still here", m.Body)
		// The watcher saw ann's message and no presence change after bob's
		// own arrival.
		ev = watcher.next()
		require.NotNil(t, ev.GetMessage(), "no LEFT/JOINED flap, got %v", ev)
		assert.Equal(t, "still here", ev.GetMessage().Body)
		l, err := h.client.ListChatRoomUsers(h.ctx(issue("u2", "bob", code, time.Hour), 5*time.Second),
			&chatv1.ListChatRoomUsersRequest{ShortCode: code})
		require.NoError(t, err)
		assert.Equal(t, []string{"ann", "bob"}, names(l.Users))
	})

	t.Run("without refresh the stream ends at expiry", func(t *testing.T) {
		s := h.open(h.client, issue("u1", "ann", code, 1100*time.Millisecond), nil)
		assert.Equal(t, codes.Unauthenticated, s.end())
	})

	for _, tc := range []struct {
		name string
		tok  func() string
		want codes.Code
	}{
		{"another room", func() string { return issue("u1", "ann", other, time.Hour) }, codes.PermissionDenied},
		{"another user", func() string { return issue("u2", "bob", code, time.Hour) }, codes.PermissionDenied},
		{"a user token", func() string { return ann }, codes.Unauthenticated},
		{"expired", func() string {
			past, err := token.NewSigner(secret, "", token.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
			require.NoError(t, err)
			tok, _, err := past.IssueRoom("u1", "ann", code, time.Hour)
			require.NoError(t, err)
			return tok
		}, codes.Unauthenticated},
		{"garbage", func() string { return "not.a.jwt" }, codes.Unauthenticated},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := h.open(h.client, issue("u1", "ann", code, time.Hour), nil)
			refresh(s, tc.tok())
			assert.Equal(t, tc.want, s.end())
		})
	}
}
