package api_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

func TestRegisterSucceeds(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		before := time.Now().Add(-time.Second)
		r := e.register("Alice.B-1_x", "correct horse")
		require.Equal(t, http.StatusOK, r.Code, r.Raw)
		assert.Equal(t, "Alice.B-1_x", r.Body["user_name"])
		assert.Positive(t, r.Body["id"])
		created, err := time.Parse(time.RFC3339Nano, r.Body["created_at"].(string))
		require.NoError(t, err)
		assert.WithinRange(t, created, before, time.Now().Add(time.Second))
		assert.Len(t, r.Body, 3, "no hash or other field leaks: %s", r.Raw)

		stored, err := s.ByName(t.Context(), "alice.b-1_x")
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=256,t=1,p=1$"), stored.PasswordHash)
	})
}

func TestRegisterRejects(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("taken", "password1").Code)

	long := strings.Repeat("x", 5000)
	tests := []struct {
		name   string
		body   any
		header []string
		code   int
		msg    string // substring of the error message
	}{
		{"empty body", "", nil, 400, "body is empty"},
		{"malformed JSON", `{"user_name":`, nil, 400, "malformed JSON"},
		{"syntax error", `{"user_name" "x"}`, nil, 400, "malformed JSON at byte"},
		{"not an object", `["a","b"]`, nil, 400, "must be a JSON object"},
		{"wrong type", `{"user_name":42,"password":"password1"}`, nil, 400, `field "user_name" must be a string`},
		{"unknown field", `{"user_name":"bob","password":"password1","admin":true}`, nil, 400, `unknown field "admin"`},
		{"trailing data", `{"user_name":"bob","password":"password1"} {}`, nil, 400, "unexpected data after"},
		{"missing name", creds("", "password1"), nil, 400, "invalid user_name: is required"},
		{"short name", creds("ab", "password1"), nil, 400, "invalid user_name: must be 3 to 32 characters"},
		{"long name", creds(strings.Repeat("a", 33), "password1"), nil, 400, "invalid user_name: must be 3 to 32"},
		{"space in name", creds("bob smith", "password1"), nil, 400, "invalid user_name: may contain only"},
		{"escape in name", creds("bob\x1b[31m", "password1"), nil, 400, "invalid user_name: may contain only"},
		{"NUL in name", creds("bob\x00x", "password1"), nil, 400, "invalid user_name: may contain only"},
		{"DEL in name", creds("bob\x7f", "password1"), nil, 400, "invalid user_name: may contain only"},
		{"look-alike Unicode", creds("аlice", "password1"), nil, 400, "invalid user_name: may contain only"}, // Cyrillic а
		{"missing password", creds("bob", ""), nil, 400, "invalid password: is required"},
		{"short password", creds("bob", "1234567"), nil, 400, "invalid password: must be 8 to 128 bytes"},
		{"long password", creds("bob", strings.Repeat("p", 129)), nil, 400, "invalid password: must be 8 to 128"},
		{"duplicate", creds("taken", "password1"), nil, 409, "user name already taken"},
		{"duplicate other case", creds("TaKeN", "password1"), nil, 409, "user name already taken"},
		{"body too large", `{"user_name":"bob","password":"` + long + `"}`, nil, 413, "too large"},
		{"wrong content type", creds("bob", "password1"), []string{"Content-Type", "text/plain"}, 415, "Content-Type must be application/json"},
		{"form content type", "user_name=bob", []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(http.MethodPost, "/register", tt.body, tt.header...)
			assert.Equal(t, tt.code, r.Code, r.Raw)
			assert.Contains(t, r.Body["error"], tt.msg)
			assert.Len(t, r.Body, 1, "errors carry only the error field")
		})
	}
	t.Run("JSON with charset is fine", func(t *testing.T) {
		r := e.do(http.MethodPost, "/register", creds("charset", "password1"), "Content-Type", "application/json; charset=utf-8")
		assert.Equal(t, http.StatusOK, r.Code, r.Raw)
	})
	t.Run("boundary lengths are fine", func(t *testing.T) {
		assert.Equal(t, http.StatusOK, e.register("abc", "12345678").Code)
		assert.Equal(t, http.StatusOK, e.register(strings.Repeat("z", 32), strings.Repeat("p", 128)).Code)
	})
}

// TestBodyLimitWithoutContentLength covers chunked bodies, which the
// Content-Length check cannot see.
func TestBodyLimitWithoutContentLength(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	body := `{"user_name":"bob","password":"` + strings.Repeat("x", 5000) + `"}`
	req, rec := httptestRequest(body)
	req.ContentLength = -1
	e.handler.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusRequestEntityTooLarge, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"error":"request body too large: limit is 4096 bytes"}`, rec.Body.String())
}

func TestConcurrentDuplicateRegistration(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		const n = 50
		codes := make(chan int, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { // ends after one request
				defer wg.Done()
				<-start
				codes <- e.register([]string{"mallory", "Mallory", "MALLORY"}[i%3], "password1").Code
			}()
		}
		close(start)
		wg.Wait()
		close(codes)
		count := map[int]int{}
		for c := range codes {
			count[c]++
		}
		assert.Equal(t, map[int]int{http.StatusOK: 1, http.StatusConflict: n - 1}, count)
	})
}
