package api

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// statusLog is a transport stream that records the statuses written.
type statusLog struct {
	mu       sync.Mutex
	statuses []*status.Status
}

func (l *statusLog) WriteStatus(st *status.Status) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses = append(l.statuses, st)
	return nil
}

func (l *statusLog) codes() []codes.Code {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []codes.Code
	for _, st := range l.statuses {
		out = append(out, st.Code())
	}
	return out
}

// A stream ends with the first reason given, whoever gives it: that
// reason's status is written once, and the handler returns the reason,
// so that the log and the metrics agree with what the client saw.
func TestEnderFirstReasonWins(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		ends    []error // given to end, in order
		handler error   // what the handler would return
		written []codes.Code
		result  error
	}{
		{"overflow, then expiry", []error{rooms.ErrSlowConsumer, rooms.ErrRoomTokenExpired}, context.Canceled,
			[]codes.Code{codes.ResourceExhausted}, rooms.ErrSlowConsumer},
		{"drain", []error{rooms.ErrShuttingDown}, context.Canceled, []codes.Code{codes.Unavailable}, rooms.ErrShuttingDown},
		{"room deleted", []error{rooms.ErrDeleted}, context.Canceled, []codes.Code{codes.NotFound}, rooms.ErrDeleted},
		{"half-close flushed", []error{errFlushed, rooms.ErrSlowConsumer}, context.Canceled, []codes.Code{codes.OK}, nil},
		// An internal error is answered generically; the handler returns
		// it so that it is logged.
		{"send failed", []error{boom}, context.Canceled, []codes.Code{codes.Internal}, boom},
		{"nothing: the handler's own error", nil, errNoOpen, nil, errNoOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := &statusLog{}
			e := &ender{sw: log}
			for _, err := range tt.ends {
				e.end(err)
			}
			assert.Equal(t, tt.written, log.codes())
			assert.Equal(t, tt.result, e.result(tt.handler))
			assert.Equal(t, tt.result, e.result(tt.result), "a second result changes nothing")
		})
	}

	t.Run("after the handler returned", func(t *testing.T) {
		log := &statusLog{}
		e := &ender{sw: log}
		require.ErrorIs(t, e.result(errNoOpen), errNoOpen)
		e.end(rooms.ErrSlowConsumer) // e.g. a writer failing late
		assert.Empty(t, log.codes(), "gRPC writes the handler's status, nobody else")
	})
}

// Drain ends every registered stream with Unavailable, not those that
// have gone, and refuses streams from then on.
func TestOpenStreamsDrain(t *testing.T) {
	var l openStreams
	logs := make([]*statusLog, 4)
	enders := make([]*ender, 4)
	for i := range enders {
		logs[i] = &statusLog{}
		enders[i] = &ender{sw: logs[i]}
		require.True(t, l.add(enders[i]))
	}
	l.remove(enders[0]) // the last one in the list
	l.remove(enders[3]) // the first
	l.remove(enders[2]) // then the new first; 1 remains
	l.drain(rooms.ErrShuttingDown)
	for i, want := range [][]codes.Code{nil, {codes.Unavailable}, nil, nil} {
		assert.Equal(t, want, logs[i].codes(), "stream %d", i)
	}
	late := &ender{sw: &statusLog{}}
	assert.False(t, l.add(late), "no stream starts once draining")
	l.remove(enders[1]) // a drained stream's handler returns
	l.drain(rooms.ErrShuttingDown)
	assert.Equal(t, []codes.Code{codes.Unavailable}, logs[1].codes(), "drained once")
}

// Chat served by a gRPC server whose transport stream cannot write a
// status fails with Internal rather than run streams it could not end.
func TestChatNeedsStatusWriter(t *testing.T) {
	s := &Server{}
	err := s.Chat(bareChat{ctx: context.Background()})
	require.ErrorIs(t, err, errNoStatusWriter)
	st, internal := toStatus(err)
	assert.Equal(t, codes.Internal, st.Code())
	assert.True(t, internal)
}

// bareChat is a Chat stream with nothing but a context.
type bareChat struct {
	chatv1.ChatService_ChatServer
	ctx context.Context
}

func (b bareChat) Context() context.Context { return b.ctx }
