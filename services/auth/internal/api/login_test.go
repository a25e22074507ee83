package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

func TestLoginIssuesUserToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		reg := e.register("Alice", "correct horse")
		require.Equal(t, http.StatusOK, reg.Code, reg.Raw)

		r := e.login("alice", "correct horse") // any case logs in
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		assert.Len(t, r.Body, 2)
		u, err := e.signer.VerifyUser(r.Body["token"].(string))
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatFloat(reg.Body["id"].(float64), 'f', -1, 64), u.ID, "sub is the decimal user ID")
		assert.Equal(t, "Alice", u.Name, "the token carries the registered spelling")
		exp, err := time.Parse(time.RFC3339, r.Body["expires_at"].(string))
		require.NoError(t, err)
		assert.True(t, exp.Equal(u.ExpiresAt), "expires_at %s matches the token's exp %s", exp, u.ExpiresAt)
		assert.WithinDuration(t, time.Now().Add(15*time.Minute), exp, 5*time.Second)
	})
}

func TestLoginFailuresLookAlike(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)

	wrong := e.login("alice", "wrong horse")
	unknown := e.login("nobody", "wrong horse")
	assert.Equal(t, http.StatusUnauthorized, wrong.Code)
	assert.Equal(t, http.StatusUnauthorized, unknown.Code)
	assert.Equal(t, wrong.Raw, unknown.Raw, "same body for unknown user and wrong password")
	assert.JSONEq(t, `{"error":"invalid user name or password"}`, unknown.Raw)

	// The same time: an unknown user costs one argon2id verification like
	// a wrong password does. Counting them is exact where timing is noisy.
	before := verifyCount(t, e)
	e.login("nobody2", "wrong horse")
	assert.Equal(t, before+1, verifyCount(t, e), "unknown user still runs a verification")
	e.login("alice", "wrong horse!")
	assert.Equal(t, before+2, verifyCount(t, e), "wrong password runs one verification")
}

// verifyCount reads how many argon2id verifications ran.
func verifyCount(t *testing.T, e *env) int {
	t.Helper()
	families, err := e.metrics.Registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != "auth_password_hash_duration_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == "verify" {
					return int(m.GetHistogram().GetSampleCount())
				}
			}
		}
	}
	return 0
}

func TestLoginRejectsInvalidInput(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	for _, tt := range []struct {
		name string
		body any
		code int
	}{
		{"unknown field", `{"user_name":"alice","password":"password1","x":1}`, 400},
		{"invalid name", creds("a b", "password1"), 400},
		{"short password", creds("alice", "short"), 400},
		{"too large", `{"user_name":"` + strings.Repeat("a", 5000) + `"}`, 413},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/login", tt.body)
			assert.Equal(t, tt.code, r.Code, r.Raw)
			assert.NotEmpty(t, r.Body["error"])
		})
	}
	r := e.do(http.MethodPost, "/login", creds("alice", "password1"), "Content-Type", "text/plain")
	assert.Equal(t, http.StatusUnsupportedMediaType, r.Code)
}

func TestRehashOnLoginWhenParamsRaised(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		weak := newEnv(t, s)
		require.Equal(t, http.StatusOK, weak.register("alice", "correct horse").Code)
		old, err := s.ByName(t.Context(), "alice")
		require.NoError(t, err)

		stronger := password.Params{MemoryKiB: 512, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
		e := newEnv(t, s, withParams(stronger))
		require.Equal(t, http.StatusUnauthorized, e.login("alice", "wrong horse").Code)
		after, err := s.ByName(t.Context(), "alice")
		require.NoError(t, err)
		assert.Equal(t, old.PasswordHash, after.PasswordHash, "no rehash on a failed login")

		require.Equal(t, http.StatusOK, e.login("alice", "correct horse").Code)
		after, err = s.ByName(t.Context(), "alice")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(after.PasswordHash, "$argon2id$v=19$m=512,t=2,p=1$"), after.PasswordHash)
		assert.Equal(t, 1, e.logs.FilterMessage("password rehashed with current parameters").Len())

		require.Equal(t, http.StatusOK, e.login("alice", "correct horse").Code, "new hash verifies")
		again, err := s.ByName(t.Context(), "alice")
		require.NoError(t, err)
		assert.Equal(t, after.PasswordHash, again.PasswordHash, "no rehash when already current")
	})
}
