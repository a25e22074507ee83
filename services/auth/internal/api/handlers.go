package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
)

// credentials is the body of /register and /login.
type credentials struct {
	UserName string `json:"user_name"`
	Password string `json:"password"`
}

type registered struct {
	ID        int64     `json:"id"`
	CreatedAt time.Time `json:"created_at"`
	UserName  string    `json:"user_name"`
}

type loggedIn struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func (h *handlers) register(c *gin.Context) {
	if wait := h.Registrations.Allow(throttle.AddressKey(c.ClientIP())); wait > 0 {
		h.fail(c, &rateLimitedError{retryAfter: wait})
		return
	}
	var in credentials
	if err := decode(c, h.cfg.MaxBodyBytes, &in); err != nil {
		h.fail(c, err)
		return
	}
	u, err := h.Accounts.Register(c.Request.Context(), in.UserName, in.Password)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, registered{ID: u.ID, CreatedAt: u.CreatedAt, UserName: u.Name})
}

func (h *handlers) login(c *gin.Context) {
	var in credentials
	if err := decode(c, h.cfg.MaxBodyBytes, &in); err != nil {
		h.fail(c, err)
		return
	}
	u, err := h.Accounts.Login(c.Request.Context(), in.UserName, in.Password, throttle.AddressKey(c.ClientIP()))
	if err != nil {
		h.fail(c, err)
		return
	}
	tok, exp, err := h.Issuer.IssueUser(strconv.FormatInt(u.ID, 10), u.Name, h.cfg.TokenDuration)
	if err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, loggedIn{Token: tok, ExpiresAt: exp.UTC()})
}

// healthz says the process is alive; it checks nothing else, so that an
// orchestrator does not restart the service for a database outage.
func (h *handlers) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz says whether the service can serve: the database answers.
func (h *handlers) readyz(c *gin.Context) {
	if err := h.DB.Ping(c.Request.Context()); err != nil {
		h.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}
