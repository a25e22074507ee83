package api_test

import (
	"net/http"
	"testing"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
)

// BenchmarkLogin measures one successful login through the router with
// the production argon2id parameters: dominated by one verification.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, dbtest.SQLite(b), withParams(password.DefaultParams()))
	if r := e.register("alice", "correct horse"); r.Code != http.StatusOK {
		b.Fatalf("register: %d %s", r.Code, r.Raw)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := e.login("alice", "correct horse"); r.Code != http.StatusOK {
			b.Fatalf("login: %d %s", r.Code, r.Raw)
		}
	}
}
