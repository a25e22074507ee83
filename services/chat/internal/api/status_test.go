package api

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/grpc/codes"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Limits are the client's to respect: ResourceExhausted, never Internal.
func TestStatusOfLimits(t *testing.T) {
	cases := []struct {
		err  error
		want codes.Code
	}{
		{fmt.Errorf("engine: 16 tries at length 4: %w", rooms.ErrNoCode), codes.ResourceExhausted},
		{fmt.Errorf("%w (100)", rooms.ErrTooManyRooms), codes.ResourceExhausted},
		{fmt.Errorf("%w (16)", rooms.ErrTooManyStreams), codes.ResourceExhausted},
		{rooms.ErrRoomTokenExpired, codes.Unauthenticated},
		{fmt.Errorf("%w: proto: cannot parse", rooms.ErrMalformed), codes.InvalidArgument},
		{errors.New("disk full"), codes.Internal},
	}
	for _, tc := range cases {
		t.Run(tc.err.Error(), func(t *testing.T) {
			st, internal := toStatus(tc.err)
			assert.Equal(t, tc.want, st.Code())
			assert.Equal(t, tc.want == codes.Internal, internal)
		})
	}
}

// MAX_ROOMS_PER_USER through the API.
func TestRoomsPerUserLimit(t *testing.T) {
	h := newHarness(t, opts{maxRooms: 2})
	ann := h.userToken("u1", "ann")
	h.room(ann, "a", "pw")
	h.room(ann, "b", "pw")
	_, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "c", Password: "pw"})
	assert.Equal(t, codes.ResourceExhausted, statusCode(err))
}

// A store's failure is Unavailable with a fixed message: the cause (which
// names the database's address) is logged, never sent.
func TestUnavailableHidesStoreError(t *testing.T) {
	err := fmt.Errorf("room ABC234: %w", fmt.Errorf("%w: %w", rooms.ErrUnavailable,
		errors.New("failed to connect to `user=chat database=chat`: 10.0.3.7:5432 (db.internal): dial error: connection refused")))
	st, logged := toStatus(err)
	assert.Equal(t, codes.Unavailable, st.Code())
	assert.Equal(t, rooms.ErrUnavailable.Error(), st.Message())
	assert.True(t, logged, "the cause is logged")
}
