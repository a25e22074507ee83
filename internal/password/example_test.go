package password_test

import (
	"context"
	"fmt"

	"github.com/grpcchatter/grpcchatter/internal/password"
)

// A login checks the stored hash and replaces it when the configured
// cost has been raised since it was made.
func Example() {
	ctx := context.Background()
	old, _ := password.New(password.Params{MemoryKiB: 64, Time: 1, Threads: 1})
	stored, _ := old.Hash(ctx, "correct horse")

	h, err := password.New(password.Params{MemoryKiB: 128, Time: 2, Threads: 1})
	if err != nil {
		panic(err)
	}
	ok, stale, err := h.Verify(ctx, "correct horse", stored)
	if err != nil {
		panic(err)
	}
	if ok && stale {
		stored, _ = h.Hash(ctx, "correct horse") // and save it
	}
	ok, stale, _ = h.Verify(ctx, "correct horse", stored)
	fmt.Println(ok, stale)
	// Output: true false
}
