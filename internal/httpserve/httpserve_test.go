package httpserve_test

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/httpserve"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// client keeps no idle connections, so that none outlives its test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// running is Serve at work on a loopback listener of its own.
type running struct {
	url    string
	cancel context.CancelFunc // ends Serve's context
	done   chan error
	once   sync.Once
	err    error
}

func serve(t *testing.T, srv *http.Server, grace time.Duration) *running {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{url: "http://" + lis.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	// Owner: the test. Exit: cancel, at the latest in Cleanup.
	go func() { r.done <- httpserve.Serve(ctx, srv, lis, grace) }()
	t.Cleanup(func() {
		cancel()
		r.wait(t)
	})
	return r
}

// wait is what Serve returned.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	r.once.Do(func() {
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return")
		}
	})
	return r.err
}

func get(url string) (int, string, error) {
	res, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	return res.StatusCode, string(body), err
}

func TestServesUntilContextEnds(t *testing.T) {
	r := serve(t, httpserve.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})), 5*time.Second)
	code, body, err := get(r.url)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "ok", body)

	r.cancel()
	assert.NoError(t, r.wait(t))
	_, _, err = get(r.url)
	assert.Error(t, err, "nothing listens any more")
}

// A request in progress when the context ends may finish within grace,
// while new connections are refused already.
func TestGraceLetsRequestFinish(t *testing.T) {
	started, release := make(chan struct{}), make(chan struct{})
	r := serve(t, httpserve.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		close(started)
		<-release
		_, _ = io.WriteString(w, "finished")
	})), 30*time.Second)
	type response struct {
		code int
		body string
		err  error
	}
	got := make(chan response, 1)
	// Owner: the test. Exit: the handler answers once released.
	go func() {
		code, body, err := get(r.url)
		got <- response{code, body, err}
	}()
	<-started
	r.cancel()
	for { // Shutdown closes the listener first
		c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
		if err != nil {
			break
		}
		c.Close()
		time.Sleep(10 * time.Millisecond)
	}
	close(release)
	res := <-got
	require.NoError(t, res.err)
	assert.Equal(t, http.StatusOK, res.code)
	assert.Equal(t, "finished", res.body)
	assert.NoError(t, r.wait(t))
}

// A request still running after grace is cut, and Serve still returns nil.
func TestRequestPastGraceIsCut(t *testing.T) {
	started, ended := make(chan struct{}), make(chan struct{})
	r := serve(t, httpserve.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		close(started)
		<-req.Context().Done()
		close(ended)
	})), 50*time.Millisecond)
	got := make(chan error, 1)
	// Owner: the test. Exit: the connection is closed under it.
	go func() {
		_, _, err := get(r.url)
		got <- err
	}()
	<-started
	r.cancel()
	assert.NoError(t, r.wait(t))
	select {
	case err := <-got:
		assert.Error(t, err, "the request was cut")
	case <-time.After(30 * time.Second):
		t.Fatal("the request outlived Serve")
	}
	<-ended
}

// A listener that fails ends Serve at once with the error.
func TestListenerFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	// Owner: the test. Exit: Serve returns when the listener is closed.
	go func() { done <- httpserve.Serve(ctx, httpserve.NewServer(http.NotFoundHandler()), lis, time.Second) }()
	require.NoError(t, lis.Close())
	select {
	case err := <-done:
		assert.ErrorIs(t, err, net.ErrClosed)
	case <-time.After(30 * time.Second):
		t.Fatal("Serve did not return on a closed listener")
	}
}

// The pprof CPU profile extends its own write deadline by its duration,
// so NewServer's WriteTimeout does not cut it; a plain handler as slow is
// cut. Here the timeout is shortened to keep the test short.
func TestProfileOutlastsWriteTimeout(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/slow", func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(time.Second)
		_, _ = io.WriteString(w, "late")
	})
	srv := httpserve.NewServer(mux)
	srv.WriteTimeout = 300 * time.Millisecond
	r := serve(t, srv, 5*time.Second)

	code, body, err := get(r.url + "/debug/pprof/profile?seconds=1")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.True(t, bytes.HasPrefix([]byte(body), []byte{0x1f, 0x8b}), "a gzipped profile")

	_, body, err = get(r.url + "/slow")
	assert.True(t, err != nil || body == "", "a plain handler past WriteTimeout is cut: %q, %v", body, err)
}
