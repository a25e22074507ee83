package api

import (
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"
)

// CORS lets a page on another origin, such as the chat service's web
// page, call the API from a browser. Origins are compared exactly. The API
// sets no cookies and reads no credentials a browser would attach, so
// Access-Control-Allow-Credentials is never sent and "*" is safe to allow.
const (
	corsAllowHeaders  = "Content-Type, " + requestIDHeader // what the handlers read
	corsExposeHeaders = "Retry-After, " + requestIDHeader  // not CORS-safelisted
	corsMaxAge        = "600"                              // seconds a browser may cache a preflight
)

// origins is the allow-list of CORS_ALLOWED_ORIGINS; the zero value
// allows no other origin.
type origins struct {
	any   bool // "*"
	exact map[string]bool
}

func newOrigins(list []string) origins {
	o := origins{exact: make(map[string]bool, len(list))}
	for _, s := range list {
		if s == "*" {
			o.any = true
		}
		o.exact[s] = true
	}
	return o
}

func (o origins) allows(origin string) bool {
	return origin != "" && (o.any || o.exact[origin])
}

// cors marks the answer to an allowed origin as readable by its page,
// errors included, so that the page sees why a request failed and when
// to retry. The answer depends on Origin, hence Vary on every answer for
// shared caches. Installed only when some origin is allowed.
func (h *handlers) cors(c *gin.Context) {
	c.Writer.Header().Add("Vary", "Origin")
	origin := c.GetHeader("Origin")
	if h.origins.allows(origin) {
		if h.origins.any {
			origin = "*"
		}
		c.Header("Access-Control-Allow-Origin", origin)
		c.Header("Access-Control-Expose-Headers", corsExposeHeaders)
	}
	c.Next()
}

// preflight answers OPTIONS on a route that accepts methods. It is a
// route of its own, so that it is logged and counted under the route's
// name, and it never reaches the handlers' throttles, body limits or
// password hashing: a preflight is cheap and is not a login attempt.
func (h *handlers) preflight(methods ...string) gin.HandlerFunc {
	list := strings.Join(methods, ", ")
	return func(c *gin.Context) {
		if c.GetHeader("Origin") == "" || c.GetHeader("Access-Control-Request-Method") == "" {
			// Not CORS: a plain OPTIONS asks what the route supports.
			c.Header("Allow", list+", OPTIONS")
			c.Status(http.StatusNoContent)
			return
		}
		if !h.origins.allows(c.GetHeader("Origin")) {
			h.fail(c, errOrigin)
			return
		}
		// The origin headers are set by h.cors. The browser, not the
		// server, compares the requested method and headers with these.
		c.Header("Access-Control-Allow-Methods", list)
		c.Header("Access-Control-Allow-Headers", corsAllowHeaders)
		c.Header("Access-Control-Max-Age", corsMaxAge)
		c.Status(http.StatusNoContent)
	}
}
