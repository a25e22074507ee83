// Package web serves the browser client: the page and its scripts,
// embedded in the binary, the settings the page reads, and, on the same
// origin, the chat service's browser transports (the WebSocket stream and
// the HTTP/JSON calls), so that the page needs no CORS to reach chat.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strings"
)

//go:embed static
var static embed.FS

// ChatPath is where the WebSocket Chat stream is served.
const ChatPath = "/v1/chat"

// Config is what the handler serves besides the page.
type Config struct {
	// AuthURL is the auth service's base URL as browsers reach it, e.g.
	// https://auth.example.com. Empty means the page's own host on port
	// 8080, the local default.
	AuthURL string
	// Chat serves the WebSocket Chat stream at ChatPath.
	Chat http.Handler
	// API serves the unary calls under APIPrefix.
	API       http.Handler
	APIPrefix string
}

// Handler returns the web listener's handler.
func Handler(cfg Config) http.Handler {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree always has static/
	}
	mux := http.NewServeMux()
	mux.Handle(ChatPath, cfg.Chat)
	mux.Handle(cfg.APIPrefix, cfg.API)
	mux.HandleFunc("GET /config.json", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-cache")
		_ = json.NewEncoder(w).Encode(struct {
			AuthURL string `json:"authUrl"`
		}{authURL(cfg.AuthURL, r)})
	})
	fileServer := http.FileServerFS(files)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		// The page changes with the binary: browsers revalidate it.
		w.Header().Set("Cache-Control", "no-cache")
		fileServer.ServeHTTP(w, r)
	})
	return secure(cfg.AuthURL, mux)
}

// secure sets the headers that confine the page: scripts, styles and
// connections from its own origin (and the auth service) only, no form
// submissions (the scripts send everything), no framing, no MIME
// sniffing, no referrer to other sites.
func secure(auth string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self'"+sockets(r)+" "+origin(authURL(auth, r))+
			"; img-src 'self' data:; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		next.ServeHTTP(w, r)
	})
}

// sockets names the page's own WebSocket origins for connect-src: 'self'
// covers them only in browsers that implement CSP level 3's rule.
func sockets(r *http.Request) string {
	u, err := url.Parse("//" + r.Host)
	if err != nil || u.Host == "" || u.Host != r.Host {
		return ""
	}
	return " ws://" + u.Host + " wss://" + u.Host
}

// authURL is the configured auth URL, or the request's host on port 8080.
func authURL(configured string, r *http.Request) string {
	if configured != "" {
		return strings.TrimRight(configured, "/")
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(r.Host); err == nil {
		host = h
	}
	return scheme + "://" + net.JoinHostPort(strings.Trim(host, "[]"), "8080")
}

// origin is scheme://host[:port] of a URL, for the CSP.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}
