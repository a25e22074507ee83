package api_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// seeds are bodies near the edges of the decoder and the rules.
var seeds = []string{
	`{"user_name":"alice","password":"correct horse"}`,
	`{"user_name":"ALICE","password":"correct horse"}`,
	`{"user_name":"al","password":"x"}`,
	`{"user_name":"аlice","password":"correct horse"}`,
	`{"user_name":"alice","password":"correct horse","x":1}`,
	`{"user_name":null,"password":null}`,
	`{"user_name":1e999}`,
	`{"user_name":"\u0000\u0000\u0000","password":"\ud800\udc00xxxxxxxx"}`,
	`{"user_name":"a.b","password":"12345678"}{}`,
	`{"user_name":"alice","password":"correct horse","password":"x"}`,
	`{"USER_NAME":"alice","PassWord":"correct horse"}`,
	"{\"user_name\":\"alice\",\"password\":\"\xff\xff\xff\xff\xff\xff\xff\xff\"}",
	`{"user_name":"alice","password":"\udc00xxxxxxxx"}`,
	`[]`, `null`, `""`, `{`, `}`, ``, "\xff\xfe", `{"user_name":{"a":[1,2,{}]}}`,
}

// fuzzLimits keeps the throttles and the registration limit out of the
// way: the clock is frozen and the env shared by every input, so with the
// usual limits all but the first few inputs would only reach a 429.
var fuzzLimits = withLimits(1_000_000, 1_000_000, 2_000_000, 1_000_000)

func FuzzRegister(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, "application/json")
	}
	f.Add(`{"user_name":"bob","password":"password1"}`, "text/plain")
	f.Add(`{"user_name":"bob","password":"password1"}`, "application/json; charset=\"")
	e := newEnv(f, dbtest.SQLite(f), fuzzLimits)
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := e.with(t).do(http.MethodPost, "/register", body, "Content-Type", contentType)
		switch {
		case r.Code >= 500 || r.Code == http.StatusTooManyRequests:
			t.Fatalf("POST /register %q (%s) = %d %s", body, contentType, r.Code, r.Raw)
		case r.Code == http.StatusOK:
			id, _ := r.Body["id"].(float64)
			name, _ := r.Body["user_name"].(string)
			created, _ := r.Body["created_at"].(string)
			_, err := time.Parse(time.RFC3339Nano, created)
			if len(r.Body) != 3 || id <= 0 || users.ValidateName(name) != nil || err != nil {
				t.Fatalf("200 body is not {id, created_at, user_name}: %s", r.Raw)
			}
		case r.Body["error"] == nil:
			t.Fatalf("error answer without an error field: %d %s", r.Code, r.Raw)
		}
	})
}

func FuzzLogin(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, "application/json")
	}
	e := newEnv(f, dbtest.SQLite(f), fuzzLimits)
	reg := e.register("alice", "correct horse")
	if reg.Code != http.StatusOK {
		f.Fatalf("register: %d %s", reg.Code, reg.Raw)
	}
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := e.with(t).do(http.MethodPost, "/login", body, "Content-Type", contentType)
		switch {
		case r.Code >= 500 || r.Code == http.StatusTooManyRequests:
			t.Fatalf("POST /login %q (%s) = %d %s", body, contentType, r.Code, r.Raw)
		case r.Code == http.StatusOK:
			tok, _ := r.Body["token"].(string)
			u, err := e.signer.VerifyUser(tok)
			exp, _ := r.Body["expires_at"].(string)
			_, perr := time.Parse(time.RFC3339, exp)
			if len(r.Body) != 2 || err != nil || perr != nil || u.Name != "alice" {
				t.Fatalf("200 body is not {token, expires_at} for alice: %s (%v)", r.Raw, err)
			}
		case r.Body["error"] == nil:
			t.Fatalf("error answer without an error field: %d %s", r.Code, r.Raw)
		}
	})
}
