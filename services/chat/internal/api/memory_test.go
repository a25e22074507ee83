package api

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Environment of the helper process that holds the idle streams.
const (
	idleAddrEnv  = "CHAT_IDLE_ADDR"
	idleTokenEnv = "CHAT_IDLE_TOKEN"
	idleCountEnv = "CHAT_IDLE_STREAMS"
)

// BenchmarkIdleStreamMemory measures the server's memory per idle Chat
// stream, each on its own TCP connection. The clients run in a child
// process (this test binary re-executed), so the parent's heap and stacks
// are the server's alone. Run with -benchtime=1x; CHAT_IDLE_STREAMS sets
// the count (default 1000).
func BenchmarkIdleStreamMemory(b *testing.B) {
	n := 1000
	if v, err := strconv.Atoi(os.Getenv(idleCountEnv)); err == nil && v > 0 {
		n = v
	}
	h := newHarnessB(b)
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "idle", "pw")
	tok := h.join(ann, code, "pw")

	for b.Loop() {
		before, bh, bs, bg := serverMemoryDetail()
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleStreamsHelper$", "-test.count=1")
		cmd.Env = append(os.Environ(), idleAddrEnv+"="+h.addr, idleTokenEnv+"="+tok, idleCountEnv+"="+strconv.Itoa(n))
		stdin, err := cmd.StdinPipe()
		require.NoError(b, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(b, err)
		require.NoError(b, cmd.Start())
		sc := bufio.NewScanner(stdout)
		for sc.Scan() && !strings.Contains(sc.Text(), "READY") {
		}
		// Let the transports settle (settings, window updates) first.
		time.Sleep(500 * time.Millisecond)
		after, ah, as, ag := serverMemoryDetail()
		b.ReportMetric(float64(after-before)/float64(n), "B/idle-stream")
		b.ReportMetric(float64(ah-bh)/float64(n), "heap-B/idle-stream")
		b.ReportMetric(float64(as-bs)/float64(n), "stack-B/idle-stream")
		b.ReportMetric(float64(ag-bg)/float64(n), "goroutines/idle-stream")
		if f := os.Getenv("CHAT_IDLE_HEAPPROFILE"); f != "" {
			out, err := os.Create(f)
			require.NoError(b, err)
			require.NoError(b, pprof.WriteHeapProfile(out))
			require.NoError(b, out.Close())
		}
		if f := os.Getenv("CHAT_IDLE_GOROUTINEPROFILE"); f != "" {
			out, err := os.Create(f)
			require.NoError(b, err)
			require.NoError(b, pprof.Lookup("goroutine").WriteTo(out, 1))
			require.NoError(b, out.Close())
		}
		users, err := h.eng.Users(context.Background(), code)
		require.NoError(b, err)
		if os.Getenv("CHAT_IDLE_CONNS_ONLY") == "" {
			require.Len(b, users, 1)
			require.Equal(b, uint32(n), users[0].Streams)
		}
		_ = stdin.Close()
		_ = cmd.Wait()
	}
}

// serverMemoryDetail returns live heap plus stacks, and each part, and
// the number of goroutines.
func serverMemoryDetail() (total, heap, stack uint64, goroutines int) {
	// Several cycles: each GC may halve a goroutine stack that uses less
	// than a quarter of it, and idle stacks shrink to their steady size.
	for range 6 {
		runtime.GC()
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse, m.HeapAlloc, m.StackInuse, runtime.NumGoroutine()
}

// TestIdleStreamsHelper is the client side of BenchmarkIdleStreamMemory;
// it does nothing unless run by it.
func TestIdleStreamsHelper(t *testing.T) {
	addr := os.Getenv(idleAddrEnv)
	if addr == "" {
		t.Skip("helper process for BenchmarkIdleStreamMemory")
	}
	n, _ := strconv.Atoi(os.Getenv(idleCountEnv))
	ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), "token", os.Getenv(idleTokenEnv)))
	defer cancel()
	var conns []*grpc.ClientConn
	for i := range n {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		conns = append(conns, cc)
		if os.Getenv("CHAT_IDLE_CONNS_ONLY") != "" { // baseline: connections, no streams
			_, err := chatv1.NewChatServiceClient(cc).DeleteChatRoom(ctx, &chatv1.DeleteChatRoomRequest{})
			require.Error(t, err)
			continue
		}
		s, err := chatv1.NewChatServiceClient(cc).Chat(ctx)
		require.NoError(t, err)
		require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
		_, err = s.Recv()
		require.NoError(t, err, "stream %d", i)
	}
	fmt.Println("READY")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // parent closes stdin when done
	cancel()
	for _, cc := range conns {
		_ = cc.Close()
	}
}
