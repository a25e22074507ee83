package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// post calls a method over HTTP/JSON and returns the status, the decoded
// JSON body and the response.
func (w *web) post(t *testing.T, method, tok, contentType, body string, hdr ...string) (int, map[string]any, *http.Response) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.url+HTTPPrefix+method, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", contentType)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(t, json.Unmarshal(raw, &out), "body %s", raw)
	}
	return resp.StatusCode, out, resp
}

// The unary calls over HTTP/JSON are the gRPC ones: a room created and
// joined over HTTP is the room gRPC and WebSocket members use.
func TestHTTPCalls(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web()
	owner := h.userToken("u1", "ann")
	const js = "application/json"

	st, created, _ := w.post(t, "CreateChatRoom", owner, js, `{"name":"web room","password":"pw"}`)
	require.Equal(t, http.StatusOK, st, "%v", created)
	code, _ := created["shortCode"].(string)
	require.Len(t, code, 6)
	assert.Equal(t, "web room", created["name"])

	st, joined, _ := w.post(t, "JoinChatRoom", owner, "application/json; charset=utf-8", `{"short_code":"`+strings.ToLower(code)+`","password":"pw"}`)
	require.Equal(t, http.StatusOK, st, "%v", joined)
	roomTok, _ := joined["token"].(string)
	require.NotEmpty(t, roomTok)
	assert.Equal(t, code, joined["shortCode"], "codes are canonical")
	exp, err := time.Parse(time.RFC3339Nano, joined["expiresAt"].(string))
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), exp, time.Minute)

	s := h.open(h.client, roomTok, nil)
	st, users, _ := w.post(t, "ListChatRoomUsers", roomTok, js, `{"shortCode":"`+code+`"}`)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, []any{map[string]any{"userName": "ann", "streams": float64(1)}}, users["users"])

	st, out, _ := w.post(t, "DeleteChatRoom", owner, js, `{"shortCode":"`+code+`"}`)
	require.Equal(t, http.StatusOK, st, "%v", out)
	assert.Empty(t, out)
	assert.NotNil(t, s.next().GetRoomDeleted(), "the gRPC member learns of the deletion")
}

// Errors are Connect errors: the code's HTTP status and
// {"code","message"}; a client's mistake is never Internal.
func TestHTTPErrors(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")
	bob := h.userToken("u2", "bob")
	const js = "application/json"

	tests := []struct {
		name, method, tok, ctype, body string
		status                         int
		code                           string
	}{
		{"no token", "CreateChatRoom", "", js, `{"name":"x","password":"pw"}`, 401, "unauthenticated"},
		{"a room token for a user call", "CreateChatRoom", h.join(owner, code, "pw"), js, `{"name":"x","password":"pw"}`, 401, "unauthenticated"},
		{"wrong password", "JoinChatRoom", bob, js, `{"shortCode":"` + code + `","password":"nope"}`, 403, "permission_denied"},
		{"unknown room", "JoinChatRoom", bob, js, `{"shortCode":"ZZZZZZ","password":"pw"}`, 404, "not_found"},
		{"not the owner", "DeleteChatRoom", bob, js, `{"shortCode":"` + code + `"}`, 403, "permission_denied"},
		{"invalid JSON", "CreateChatRoom", owner, js, `{"name":`, 400, "invalid_argument"},
		{"an unknown field", "CreateChatRoom", owner, js, `{"nam":"x"}`, 400, "invalid_argument"},
		{"a wrong type", "CreateChatRoom", owner, js, `{"name":5}`, 400, "invalid_argument"},
		{"an empty name", "CreateChatRoom", owner, js, `{}`, 400, "invalid_argument"},
		{"not JSON", "CreateChatRoom", owner, "text/plain", `{"name":"x","password":"pw"}`, 415, "invalid_argument"},
		{"an over-size body", "CreateChatRoom", owner, js, `{"name":"` + strings.Repeat("x", MaxRecvMsgSize(4096)) + `"}`, 400, "invalid_argument"},
		{"the stream", "Chat", owner, js, `{}`, 404, "not_found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, out, resp := w.post(t, tt.method, tt.tok, tt.ctype, tt.body)
			assert.Equal(t, tt.status, st, "%v", out)
			assert.Equal(t, tt.code, out["code"])
			assert.NotEmpty(t, out["message"])
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
		})
	}

	t.Run("GET", func(t *testing.T) {
		resp, err := http.Get(w.url + HTTPPrefix + "CreateChatRoom")
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
		assert.Equal(t, "POST", resp.Header.Get("Allow"))
	})

	t.Run("throttled", func(t *testing.T) {
		var st int
		var out map[string]any
		var resp *http.Response
		for range 6 { // the per-user-and-room limit is 5 failures
			st, out, resp = w.post(t, "JoinChatRoom", bob, js, `{"shortCode":"`+code+`","password":"guess"}`)
		}
		assert.Equal(t, http.StatusTooManyRequests, st, "%v", out)
		assert.Equal(t, "resource_exhausted", out["code"])
		assert.NotEmpty(t, resp.Header.Get("Retry-After"))
	})
}

// Pages of the listed origins may call (CORS); others get no CORS
// headers, so browsers keep the answers from them.
func TestHTTPCORS(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web("https://app.example")
	for _, tt := range []struct {
		origin string
		allow  string
	}{{"https://app.example", "https://app.example"}, {"https://evil.example", ""}} {
		t.Run(tt.origin, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodOptions, w.url+HTTPPrefix+"JoinChatRoom", nil)
			require.NoError(t, err)
			req.Header.Set("Origin", tt.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.allow, resp.Header.Get("Access-Control-Allow-Origin"))
			assert.Empty(t, resp.Header.Get("Access-Control-Allow-Credentials"), "no credentials, ever")
			if tt.allow != "" {
				assert.Equal(t, http.StatusNoContent, resp.StatusCode)
				assert.Contains(t, resp.Header.Get("Access-Control-Allow-Headers"), "Authorization")
			}
			st, _, post := w.post(t, "JoinChatRoom", "", "application/json", `{}`, "Origin", tt.origin)
			assert.Equal(t, http.StatusUnauthorized, st)
			assert.Equal(t, tt.allow, post.Header.Get("Access-Control-Allow-Origin"))
		})
	}
}
