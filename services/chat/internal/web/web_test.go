package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func get(t *testing.T, h http.Handler, method, target, host string) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if host != "" {
		req.Host = host
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func handler(authURL string) http.Handler {
	mark := func(name string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, name) })
	}
	return Handler(Config{AuthURL: authURL, Chat: mark("chat"), API: mark("api"), APIPrefix: "/svc/"})
}

func TestServesPageAndRoutes(t *testing.T) {
	h := handler("https://auth.example.com/")
	tests := []struct {
		target, wantType, wantBody string
		status                     int
	}{
		{"/", "text/html; charset=utf-8", "<script type=\"module\" src=\"", http.StatusOK},
		{"/app.js", "text/javascript; charset=utf-8", "", http.StatusOK},
		{"/chatter.js", "text/javascript; charset=utf-8", "", http.StatusOK},
		{"/style.css", "text/css; charset=utf-8", "", http.StatusOK},
		{"/nope.js", "", "", http.StatusNotFound},
		{"/v1/chat", "", "chat", http.StatusOK},
		{"/svc/Join", "", "api", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.target, func(t *testing.T) {
			resp := get(t, h, http.MethodGet, tt.target, "")
			assert.Equal(t, tt.status, resp.StatusCode)
			if tt.wantType != "" {
				assert.Equal(t, tt.wantType, resp.Header.Get("Content-Type"))
			}
			assert.Contains(t, body(t, resp), tt.wantBody)
			csp := resp.Header.Get("Content-Security-Policy")
			assert.Contains(t, csp, "script-src 'self'", "every answer confines scripts")
			assert.Contains(t, csp, "connect-src 'self' ws://example.com wss://example.com https://auth.example.com;")
			assert.Contains(t, csp, "form-action 'none'")
			assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
		})
	}
	assert.Equal(t, http.StatusMethodNotAllowed, get(t, h, http.MethodPost, "/", "").StatusCode)
}

func TestConfigJSON(t *testing.T) {
	tests := []struct{ configured, host, want string }{
		{"https://auth.example.com/", "chat.example.com", "https://auth.example.com"},
		{"", "chat.example.com:8081", "http://chat.example.com:8080"},
		{"", "[::1]:8081", "http://[::1]:8080"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			resp := get(t, handler(tt.configured), http.MethodGet, "/config.json", tt.host)
			require.Equal(t, http.StatusOK, resp.StatusCode)
			var cfg struct {
				AuthURL string `json:"authUrl"`
			}
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&cfg))
			assert.Equal(t, tt.want, cfg.AuthURL)
			assert.True(t, strings.Contains(resp.Header.Get("Content-Security-Policy"), " "+tt.want+";"))
		})
	}
}
