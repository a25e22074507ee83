package api_test

import (
	"net/http"
	"testing"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
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
	`[]`, `null`, `""`, `{`, `}`, ``, "\xff\xfe", `{"user_name":{"a":[1,2,{}]}}`,
}

func FuzzRegister(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, "application/json")
	}
	f.Add(`{"user_name":"bob","password":"password1"}`, "text/plain")
	f.Add(`{"user_name":"bob","password":"password1"}`, "application/json; charset=\"")
	e := newEnv(f, dbtest.SQLite(f))
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := e.with(t).do(http.MethodPost, "/register", body, "Content-Type", contentType)
		if r.Code >= 500 {
			t.Fatalf("POST /register %q (%s) = %d %s", body, contentType, r.Code, r.Raw)
		}
		if r.Code != http.StatusOK && r.Body["error"] == nil {
			t.Fatalf("error answer without an error field: %d %s", r.Code, r.Raw)
		}
	})
}

func FuzzLogin(f *testing.F) {
	for _, s := range seeds {
		f.Add(s, "application/json")
	}
	e := newEnv(f, dbtest.SQLite(f))
	if r := e.register("alice", "correct horse"); r.Code != http.StatusOK {
		f.Fatalf("register: %d %s", r.Code, r.Raw)
	}
	f.Fuzz(func(t *testing.T, body, contentType string) {
		r := e.with(t).do(http.MethodPost, "/login", body, "Content-Type", contentType)
		if r.Code >= 500 {
			t.Fatalf("POST /login %q (%s) = %d %s", body, contentType, r.Code, r.Raw)
		}
		if r.Code != http.StatusOK && r.Body["error"] == nil {
			t.Fatalf("error answer without an error field: %d %s", r.Code, r.Raw)
		}
	})
}
