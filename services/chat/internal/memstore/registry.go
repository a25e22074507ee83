// Package memstore keeps the room registry and the message log in memory,
// for tests and for a single instance that needs no history across
// restarts. Both types are safe for concurrent use.
package memstore

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Registry is an in-memory engine.Registry. Its changes last as long as
// the value: "durable" means visible to every later call.
type Registry struct {
	mu     sync.Mutex
	rooms  map[string]rooms.Room
	tombs  map[string]time.Time // code -> deletion time
	owners map[string]int       // owner ID -> rooms owned, so Create need not scan
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{rooms: map[string]rooms.Room{}, tombs: map[string]time.Time{}, owners: map[string]int{}}
}

// Create stores r unless its code is taken or its owner has enough rooms;
// see engine.Registry. The owner limit is checked first, so that an owner
// at the limit learns it whatever code was tried.
func (reg *Registry) Create(_ context.Context, r rooms.Room, rules engine.CreateRules) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	if rules.MaxOwned > 0 && reg.owners[r.OwnerID] >= rules.MaxOwned {
		return rooms.ErrTooManyRooms
	}
	if _, ok := reg.rooms[r.Code]; ok {
		return rooms.ErrCodeTaken
	}
	for code, at := range reg.tombs { // past their reuse time, they protect nothing
		if r.CreatedAt.Sub(at) >= rules.ReuseAfter && code != r.Code {
			delete(reg.tombs, code)
		}
	}
	if at, ok := reg.tombs[r.Code]; ok {
		if r.CreatedAt.Sub(at) < rules.ReuseAfter {
			return rooms.ErrCodeTaken
		}
		delete(reg.tombs, r.Code) // the new room supersedes it
	}
	reg.rooms[r.Code] = r
	reg.owners[r.OwnerID]++
	return nil
}

// Room returns the room with code.
func (reg *Registry) Room(_ context.Context, code string) (rooms.Room, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	r, ok := reg.rooms[code]
	if !ok {
		return rooms.Room{}, rooms.ErrNotFound
	}
	return r, nil
}

// Touch moves the room's IdleSince forward to at.
func (reg *Registry) Touch(_ context.Context, code string, at time.Time) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	r, ok := reg.rooms[code]
	if !ok {
		return rooms.ErrNotFound
	}
	if at.After(r.IdleSince) {
		r.IdleSince = at
		reg.rooms[code] = r
	}
	return nil
}

// Delete deletes the room if ownerID owns it, tombstoning its code at at.
func (reg *Registry) Delete(_ context.Context, code, ownerID string, at time.Time) error {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	r, ok := reg.rooms[code]
	switch {
	case !ok:
		return rooms.ErrNotFound
	case r.OwnerID != ownerID:
		return rooms.ErrNotOwner
	}
	reg.deleteLocked(r, at)
	return nil
}

// DeleteIdle deletes the room if it has been idle since before idleBefore.
// An unknown code is not an error: it reports false, as a sweep that lost
// a race with Delete should see.
func (reg *Registry) DeleteIdle(_ context.Context, code string, idleBefore, at time.Time) (bool, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	r, ok := reg.rooms[code]
	if !ok || !r.IdleSince.Before(idleBefore) {
		return false, nil
	}
	reg.deleteLocked(r, at)
	return true, nil
}

func (reg *Registry) deleteLocked(r rooms.Room, at time.Time) {
	delete(reg.rooms, r.Code)
	if reg.owners[r.OwnerID]--; reg.owners[r.OwnerID] == 0 {
		delete(reg.owners, r.OwnerID) // owners come and go; don't keep them all
	}
	reg.tombs[r.Code] = at
}

// Idle lists, sorted, the codes of the rooms idle since before before.
func (reg *Registry) Idle(_ context.Context, before time.Time) ([]string, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	var codes []string
	for code, r := range reg.rooms {
		if r.IdleSince.Before(before) {
			codes = append(codes, code)
		}
	}
	sort.Strings(codes)
	return codes, nil
}

// Owned is the number of rooms ownerID owns.
func (reg *Registry) Owned(_ context.Context, ownerID string) (int, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return reg.owners[ownerID], nil
}

// Count is the number of rooms.
func (reg *Registry) Count(context.Context) (int, error) {
	reg.mu.Lock()
	defer reg.mu.Unlock()
	return len(reg.rooms), nil
}
