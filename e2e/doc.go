// Package e2e holds the end-to-end tests: they build the real auth, chat and
// chatter binaries, run the services as processes on free loopback ports and
// drive them through the SDK and the CLI. It has no code outside its tests.
//
// Run them from the pkg module with `go test ./e2e/`. Auth (TestChat) and
// the chat service's rooms and history (TestRestartUnderLoad) run once on
// the embedded SQLite and once on PostgreSQL at TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable), in a fresh
// database that is dropped afterwards; without PostgreSQL those cases skip,
// unless GRPCCHATTER_REQUIRE_POSTGRES=1 makes them fail.
package e2e
