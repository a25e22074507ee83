package api

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestCreateJoinList(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "bufconn", true: "tcp"}[tcp], func(t *testing.T) {
			h := newHarness(t, opts{tcp: tcp})
			owner := h.userToken("u1", "ann")
			res, err := h.client.CreateChatRoom(h.ctx(owner, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "Général", Password: "pw"})
			require.NoError(t, err)
			assert.Len(t, res.ShortCode, 6)
			assert.Equal(t, "", strings.Trim(res.ShortCode, rooms.Alphabet))
			assert.Equal(t, "Général", res.Name)

			// Codes are read case-insensitively.
			j, err := h.client.JoinChatRoom(h.ctx(owner, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: " " + strings.ToLower(res.ShortCode), Password: "pw"})
			require.NoError(t, err)
			assert.Equal(t, res.ShortCode, j.ShortCode)
			assert.Equal(t, "Général", j.Name)
			assert.WithinDuration(t, time.Now().Add(time.Hour), j.ExpiresAt.AsTime(), time.Minute)
			adm, err := h.signer.VerifyRoom(j.Token)
			require.NoError(t, err)
			assert.Equal(t, token.Room{UserID: "u1", UserName: "ann", Room: res.ShortCode, ExpiresAt: adm.ExpiresAt}, adm)

			// Joining makes nobody visible.
			l, err := h.client.ListChatRoomUsers(h.ctx(j.Token, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: strings.ToLower(res.ShortCode)})
			require.NoError(t, err)
			assert.Empty(t, l.Users)
		})
	}
}

func TestStatusCodes(t *testing.T) {
	h := newHarness(t, opts{maxBody: 64})
	ann := h.userToken("u1", "ann")
	bob := h.userToken("u2", "bob")
	code := h.room(ann, "room", "pw")
	other := h.room(ann, "other", "pw")
	annRoom := h.join(ann, code, "pw")
	otherRoom := h.join(ann, other, "pw")

	expiredSigner, err := token.NewSigner(secret, "", token.WithClock(func() time.Time { return time.Now().Add(-2 * time.Hour) }))
	require.NoError(t, err)
	expired, _, err := expiredSigner.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)
	foreignSigner, err := token.NewSigner(strings.Repeat("another-key-", 4), "")
	require.NoError(t, err)
	forged, _, err := foreignSigner.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)

	create := func(tok, name, pw string) error {
		_, err := h.client.CreateChatRoom(h.ctx(tok, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: name, Password: pw})
		return err
	}
	join := func(tok, code, pw string) error {
		_, err := h.client.JoinChatRoom(h.ctx(tok, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: pw})
		return err
	}
	list := func(tok, code string) error {
		_, err := h.client.ListChatRoomUsers(h.ctx(tok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
		return err
	}
	del := func(tok, code string) error {
		_, err := h.client.DeleteChatRoom(h.ctx(tok, 5*time.Second), &chatv1.DeleteChatRoomRequest{ShortCode: code})
		return err
	}

	raw := func(method, tok string, fields ...string) error {
		return invokeRaw(h.ctx(tok, 5*time.Second), h.conn, "/grpcchatter.chat.v1.ChatService/"+method, rawStrings(fields...), &chatv1.CreateChatRoomResponse{})
	}

	cases := []struct {
		name  string
		err   error
		code  codes.Code
		field string
	}{
		{"no token", create("", "r", "pw"), codes.Unauthenticated, ""},
		{"malformed token", create("not.a.jwt", "r", "pw"), codes.Unauthenticated, ""},
		{"expired token", create(expired, "r", "pw"), codes.Unauthenticated, ""},
		{"foreign signature", create(forged, "r", "pw"), codes.Unauthenticated, ""},
		{"room token on create", create(annRoom, "r", "pw"), codes.Unauthenticated, ""},
		{"room token on join", join(annRoom, code, "pw"), codes.Unauthenticated, ""},
		{"room token on delete", del(annRoom, code), codes.Unauthenticated, ""},
		{"user token on list", list(ann, code), codes.Unauthenticated, ""},
		{"empty name", create(ann, "", "pw"), codes.InvalidArgument, "name"},
		{"blank name", create(ann, "   ", "pw"), codes.InvalidArgument, "name"},
		{"long name", create(ann, strings.Repeat("é", 65), "pw"), codes.InvalidArgument, "name"},
		{"invalid utf-8 name", raw("CreateChatRoom", ann, "a\xffb", "pw"), codes.InvalidArgument, "name"},
		{"invalid utf-8 password", raw("CreateChatRoom", ann, "r", "p\xff"), codes.InvalidArgument, "password"},
		{"invalid utf-8 code", raw("JoinChatRoom", ann, "AB\xff", "pw"), codes.InvalidArgument, "short_code"},
		{"empty password", create(ann, "r", ""), codes.InvalidArgument, "password"},
		{"long password", create(ann, "r", strings.Repeat("p", 129)), codes.InvalidArgument, "password"},
		{"empty code", join(ann, "", "pw"), codes.InvalidArgument, "short_code"},
		{"unknown room", join(ann, "ZZZZZZ", "pw"), codes.NotFound, ""},
		{"wrong password", join(bob, code, "nope"), codes.PermissionDenied, ""},
		{"cross-room list", list(otherRoom, code), codes.PermissionDenied, ""},
		{"delete by non-owner", del(bob, code), codes.PermissionDenied, ""},
		{"delete unknown", del(ann, "ZZZZZZ"), codes.NotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := status.Convert(tc.err)
			assert.Equal(t, tc.code, st.Code(), st.Message())
			if tc.field != "" {
				assert.True(t, strings.HasPrefix(st.Message(), tc.field+":"), st.Message())
			}
		})
	}
	// 64-character names are fine, counted in characters not bytes.
	assert.NoError(t, create(ann, strings.Repeat("é", 64), strings.Repeat("p", 128)))
	// A deleted room is gone for its tokens too.
	require.NoError(t, del(ann, code))
	assert.Equal(t, codes.NotFound, status.Code(list(annRoom, code)))
	assert.Equal(t, codes.NotFound, status.Code(del(ann, code)))
}

func TestWrongPasswordThrottle(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	bob := h.userToken("u2", "bob")
	code := h.room(ann, "room", "pw")
	for i := range 5 {
		_, err := h.client.JoinChatRoom(h.ctx(bob, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: "guess"})
		require.Equal(t, codes.PermissionDenied, status.Code(err), "attempt %d", i)
	}
	// Even the right password waits now; the hint says how long.
	_, err := h.client.JoinChatRoom(h.ctx(bob, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: "pw"})
	st := status.Convert(err)
	require.Equal(t, codes.ResourceExhausted, st.Code())
	assert.Contains(t, st.Message(), "retry in")
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			retry = r
		}
	}
	require.NotNil(t, retry, "RetryInfo detail")
	assert.InDelta(t, time.Minute.Seconds(), retry.RetryDelay.AsDuration().Seconds(), 5)

	// Other users are not affected.
	h.join(ann, code, "pw")
}

// A room token for a deleted room never opens a new room, even when the
// code generator offers the same code again.
func TestOldRoomTokenRefusedAfterDelete(t *testing.T) {
	offered := []string{"AAAAAA", "AAAAAA", "BBBBBB"}
	var mu sync.Mutex
	h := newHarness(t, opts{newCode: func(int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		c := offered[0]
		if len(offered) > 1 {
			offered = offered[1:]
		}
		return c, nil
	}})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "old", "pw")
	require.Equal(t, "AAAAAA", code)
	oldTok := h.member(code, "u2", "bob")
	_, err := h.client.DeleteChatRoom(h.ctx(ann, 5*time.Second), &chatv1.DeleteChatRoomRequest{ShortCode: code})
	require.NoError(t, err)

	eve := h.userToken("u3", "eve")
	fresh := h.room(eve, "new", "pw")
	assert.NotEqual(t, code, fresh, "the deleted room's code is not reused")

	s := h.start(h.client, oldTok, 5*time.Second)
	require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
	assert.Equal(t, codes.NotFound, s.end())
	_, err = h.client.ListChatRoomUsers(h.ctx(oldTok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
	assert.Equal(t, codes.NotFound, statusCode(err))
}

// gatedHasher holds every Verify until the gate opens, so that every
// attempt that gets as far as hashing is in flight at once.
type gatedHasher struct {
	Hasher
	entered chan struct{}
	gate    chan struct{}
}

func (g *gatedHasher) Verify(ctx context.Context, pw, hash string) (bool, bool, error) {
	g.entered <- struct{}{}
	<-g.gate
	return g.Hasher.Verify(ctx, pw, hash)
}

// Parallel wrong guesses get at most the limit of verifications: the
// attempt is reserved before hashing, so the rest are throttled with
// RetryInfo even while the first ones are still being checked.
func TestParallelWrongPasswordsThrottled(t *testing.T) {
	const n = 40
	g := &gatedHasher{entered: make(chan struct{}, n), gate: make(chan struct{})}
	h := newHarness(t, opts{hasher: func(real Hasher) Hasher { g.Hasher = real; return g }})
	code := h.room(h.userToken("u1", "ann"), "room", "pw")
	mallory := h.userToken("u2", "mallory")
	errs := make(chan error, n)
	for i := range n {
		// Owner: this test. Exit: the call returns once the gate opens
		// (5 s deadline).
		go func() {
			_, err := h.client.JoinChatRoom(h.ctx(mallory, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: fmt.Sprint("guess", i)})
			errs <- err
		}()
	}
	// Every call either waits in Verify or has already been answered.
	verifying, answered := 0, []error{}
	for verifying+len(answered) < n {
		select {
		case <-g.entered:
			verifying++
		case err := <-errs:
			answered = append(answered, err)
		}
	}
	close(g.gate)
	for range verifying {
		answered = append(answered, <-errs)
	}
	denied := 0
	for _, err := range answered {
		st := status.Convert(err)
		switch st.Code() {
		case codes.PermissionDenied:
			denied++
		case codes.ResourceExhausted:
			reason, retry := detailsOf(t, st)
			assert.Equal(t, "RATE_LIMITED", reason)
			assert.Positive(t, retry, "RetryInfo")
		default:
			t.Fatalf("unexpected %v", err)
		}
	}
	assert.LessOrEqual(t, verifying, 5, "verifications in flight")
	assert.Equal(t, verifying, denied)
	assert.Positive(t, denied)
}

// Unknown codes count against the user, so codes cannot be probed freely.
func TestUnknownCodesCountAgainstUser(t *testing.T) {
	h := newHarness(t, opts{})
	mallory := h.userToken("u2", "mallory")
	var last error
	for i := range 21 {
		_, last = h.client.JoinChatRoom(h.ctx(mallory, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: "ZZZZZ" + string(rooms.Alphabet[i]), Password: "x"})
	}
	assert.Equal(t, codes.ResourceExhausted, statusCode(last))
}
