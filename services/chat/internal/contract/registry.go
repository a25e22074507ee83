package contract

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Registry checks an engine.Registry against the rules in seams.go. open
// returns a new, empty registry for each case; it releases it through
// t.Cleanup.
func Registry(t *testing.T, open func(t *testing.T) engine.Registry) {
	cases := []struct {
		name string
		run  func(t *testing.T, reg engine.Registry)
	}{
		{"create stores every field", registryRoundTrip},
		{"unknown code", registryUnknown},
		{"codes compare exactly", registryExactCodes},
		{"code of a live room is taken", registryLiveCodeTaken},
		{"code of a deleted room is taken until ReuseAfter", registryTombstone},
		{"MaxOwned limits an owner's rooms", registryMaxOwned},
		{"Owned counts an owner's live rooms", registryOwned},
		{"MaxOwned holds under concurrent creates", registryMaxOwnedConcurrent},
		{"concurrent creates of one code: exactly one wins", registryCodeConcurrent},
		{"Touch moves IdleSince forward only", registryTouch},
		{"Delete checks the owner and tombstones the code", registryDelete},
		{"DeleteIdle deletes only a room idle before the limit", registryDeleteIdle},
		{"Idle lists rooms idle before a time", registryIdle},
		{"Count counts live rooms", registryCount},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, open(t)) })
	}
}

// room returns a room made at t0, idle since then.
func room(code, owner string) rooms.Room {
	return rooms.Room{
		Code: code, Name: "room " + code, PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$" + code,
		OwnerID: owner, CreatedAt: t0, IdleSince: t0,
	}
}

// open rules: no limit, no reuse delay.
var free = engine.CreateRules{}

func registryRoundTrip(t *testing.T, reg engine.Registry) {
	want := rooms.Room{
		Code: "ABC234", Name: "général ☕", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
		OwnerID: "42", CreatedAt: t0, IdleSince: t0.Add(90 * time.Minute),
	}
	require.NoError(t, reg.Create(ctx(t), want, free))
	got, err := reg.Room(ctx(t), "ABC234")
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func registryUnknown(t *testing.T, reg engine.Registry) {
	require.NoError(t, reg.Create(ctx(t), room("KNOWN2", "u1"), free))
	_, err := reg.Room(ctx(t), "NOPE23")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "Room")
	assert.ErrorIs(t, reg.Touch(ctx(t), "NOPE23", t0), rooms.ErrNotFound, "Touch")
	assert.ErrorIs(t, reg.Delete(ctx(t), "NOPE23", "u1", t0), rooms.ErrNotFound, "Delete")
	// DeleteIdle is not among the calls that report an unknown code: a
	// sweep may race a delete, and "did not delete" is the answer.
	deleted, err := reg.DeleteIdle(ctx(t), "NOPE23", t0.Add(time.Hour), t0)
	assert.NoError(t, err, "DeleteIdle")
	assert.False(t, deleted, "DeleteIdle")
}

func registryExactCodes(t *testing.T, reg engine.Registry) {
	require.NoError(t, reg.Create(ctx(t), room("ABC234", "u1"), free))
	_, err := reg.Room(ctx(t), "abc234")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "lower case is another code")
	_, err = reg.Room(ctx(t), "ABC2345")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "a longer code is another code")
	require.NoError(t, reg.Create(ctx(t), room("ABC23", "u1"), free), "a prefix is another code")
}

func registryLiveCodeTaken(t *testing.T, reg engine.Registry) {
	first := room("TAKEN2", "u1")
	require.NoError(t, reg.Create(ctx(t), first, free))
	second := room("TAKEN2", "u2")
	second.Name = "impostor"
	assert.ErrorIs(t, reg.Create(ctx(t), second, free), rooms.ErrCodeTaken)

	got, err := reg.Room(ctx(t), "TAKEN2")
	require.NoError(t, err)
	assert.Equal(t, first, got, "the failed create changed nothing")
	n, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func registryTombstone(t *testing.T, reg engine.Registry) {
	const reuse = time.Hour
	deletedAt := t0.Add(time.Minute)
	tests := []struct {
		name    string
		reuse   time.Duration
		after   time.Duration // from the deletion to the new room's CreatedAt
		wantErr error
	}{
		{"at once", reuse, 0, rooms.ErrCodeTaken},
		{"just before ReuseAfter", reuse, reuse - time.Microsecond, rooms.ErrCodeTaken},
		{"created before the deletion", reuse, -time.Minute, rooms.ErrCodeTaken},
		{"at ReuseAfter", reuse, reuse, nil},
		{"long after", reuse, 100 * reuse, nil},
		{"no delay", 0, 0, nil},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := fmt.Sprintf("TOMB%d", i+2)
			require.NoError(t, reg.Create(ctx(t), room(code, "u1"), free))
			require.NoError(t, reg.Delete(ctx(t), code, "u1", deletedAt))

			again := room(code, "u2")
			again.CreatedAt = deletedAt.Add(tt.after)
			err := reg.Create(ctx(t), again, engine.CreateRules{ReuseAfter: tt.reuse})
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				_, err := reg.Room(ctx(t), code)
				assert.ErrorIs(t, err, rooms.ErrNotFound, "the failed create changed nothing")
				return
			}
			require.NoError(t, err)
			got, err := reg.Room(ctx(t), code)
			require.NoError(t, err)
			assert.Equal(t, again, got)
		})
	}
}

func registryMaxOwned(t *testing.T, reg engine.Registry) {
	limit := engine.CreateRules{MaxOwned: 2}
	require.NoError(t, reg.Create(ctx(t), room("OWN2", "u1"), limit))
	require.NoError(t, reg.Create(ctx(t), room("OWN3", "u1"), limit))
	assert.ErrorIs(t, reg.Create(ctx(t), room("OWN4", "u1"), limit), rooms.ErrTooManyRooms)
	_, err := reg.Room(ctx(t), "OWN4")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "the refused room was not stored")

	assert.NoError(t, reg.Create(ctx(t), room("OTHER2", "u2"), limit), "another owner has its own count")
	assert.NoError(t, reg.Create(ctx(t), room("OWN5", "u1"), engine.CreateRules{MaxOwned: 3}),
		"the limit is the call's")

	require.NoError(t, reg.Delete(ctx(t), "OWN2", "u1", t0))
	assert.ErrorIs(t, reg.Create(ctx(t), room("OWN6", "u1"), engine.CreateRules{MaxOwned: 2}), rooms.ErrTooManyRooms)
	assert.NoError(t, reg.Create(ctx(t), room("OWN7", "u1"), engine.CreateRules{MaxOwned: 3}),
		"a deleted room no longer counts")

	for i := range 10 {
		assert.NoError(t, reg.Create(ctx(t), room(fmt.Sprintf("MANY%d", i+2), "u3"), free), "0 is unlimited")
	}
	n, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 3+1+10, n)
}

func registryOwned(t *testing.T, reg engine.Registry) {
	owned := func(owner string) int {
		n, err := reg.Owned(ctx(t), owner)
		require.NoError(t, err)
		return n
	}
	assert.Zero(t, owned("u1"), "an owner of nothing")
	require.NoError(t, reg.Create(ctx(t), room("MINE2", "u1"), free))
	require.NoError(t, reg.Create(ctx(t), room("MINE3", "u1"), free))
	require.NoError(t, reg.Create(ctx(t), room("YOURS2", "u2"), free))
	assert.ErrorIs(t, reg.Create(ctx(t), room("MINE4", "u1"), engine.CreateRules{MaxOwned: 2}), rooms.ErrTooManyRooms)
	assert.Equal(t, 2, owned("u1"), "a refused create is not counted")
	assert.Equal(t, 1, owned("u2"))
	assert.Zero(t, owned("U1"), "owner IDs compare exactly")

	require.NoError(t, reg.Delete(ctx(t), "MINE2", "u1", t0))
	assert.Equal(t, 1, owned("u1"), "a deleted room no longer counts")
	deleted, err := reg.DeleteIdle(ctx(t), "MINE3", t0.Add(100*time.Hour), t0)
	require.NoError(t, err)
	require.True(t, deleted)
	assert.Zero(t, owned("u1"), "nor an idle one deleted")
}

func registryMaxOwnedConcurrent(t *testing.T, reg engine.Registry) {
	const n, limit = 20, 5
	rules := engine.CreateRules{MaxOwned: limit}
	o := race(n, rooms.ErrTooManyRooms, func(i int) error {
		return reg.Create(ctx(t), room(fmt.Sprintf("RACE%02d", i+20), "u1"), rules)
	})
	assert.Empty(t, o.others)
	assert.Equal(t, limit, o.ok)
	assert.Equal(t, n-limit, o.want)
	count, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, limit, count)
}

func registryCodeConcurrent(t *testing.T, reg engine.Registry) {
	const n = 20
	o := race(n, rooms.ErrCodeTaken, func(i int) error {
		return reg.Create(ctx(t), room("SAME22", fmt.Sprintf("u%d", i)), engine.CreateRules{MaxOwned: 1})
	})
	assert.Empty(t, o.others)
	assert.Equal(t, 1, o.ok)
	assert.Equal(t, n-1, o.want)
	count, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, count)
}

func registryTouch(t *testing.T, reg engine.Registry) {
	require.NoError(t, reg.Create(ctx(t), room("TOUCH2", "u1"), free))
	idle := func() time.Time {
		r, err := reg.Room(ctx(t), "TOUCH2")
		require.NoError(t, err)
		return r.IdleSince
	}
	steps := []struct {
		name string
		at   time.Time
		want time.Time
	}{
		{"forward", t0.Add(time.Hour), t0.Add(time.Hour)},
		{"back is ignored", t0.Add(30 * time.Minute), t0.Add(time.Hour)},
		{"same time", t0.Add(time.Hour), t0.Add(time.Hour)},
		{"forward by a microsecond", t0.Add(time.Hour + time.Microsecond), t0.Add(time.Hour + time.Microsecond)},
		{"far back", time.Time{}, t0.Add(time.Hour + time.Microsecond)},
	}
	for _, s := range steps { // in order: each step starts where the last left
		require.NoError(t, reg.Touch(ctx(t), "TOUCH2", s.at), s.name)
		assert.Equal(t, s.want, idle(), s.name)
	}
}

func registryDelete(t *testing.T, reg engine.Registry) {
	require.NoError(t, reg.Create(ctx(t), room("DEL234", "owner"), free))
	require.NoError(t, reg.Create(ctx(t), room("KEEP23", "owner"), free))

	assert.ErrorIs(t, reg.Delete(ctx(t), "DEL234", "intruder", t0), rooms.ErrNotOwner)
	_, err := reg.Room(ctx(t), "DEL234")
	assert.NoError(t, err, "a refused delete changed nothing")

	deletedAt := t0.Add(time.Hour)
	require.NoError(t, reg.Delete(ctx(t), "DEL234", "owner", deletedAt))
	_, err = reg.Room(ctx(t), "DEL234")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "gone from Room")
	idle, err := reg.Idle(ctx(t), t0.Add(24*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, []string{"KEEP23"}, idle, "gone from Idle")
	n, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 1, n, "gone from Count")
	assert.ErrorIs(t, reg.Delete(ctx(t), "DEL234", "owner", deletedAt), rooms.ErrNotFound, "twice")

	// The tombstone is at the deletion time, not at the room's creation.
	rules := engine.CreateRules{ReuseAfter: 2 * time.Hour}
	again := room("DEL234", "other")
	again.CreatedAt = deletedAt.Add(2*time.Hour - time.Microsecond)
	assert.ErrorIs(t, reg.Create(ctx(t), again, rules), rooms.ErrCodeTaken)
	again.CreatedAt = deletedAt.Add(2 * time.Hour)
	assert.NoError(t, reg.Create(ctx(t), again, rules))
}

func registryDeleteIdle(t *testing.T, reg engine.Registry) {
	require.NoError(t, reg.Create(ctx(t), room("IDLE23", "u1"), free)) // idle since t0
	at := t0.Add(5 * time.Hour)

	deleted, err := reg.DeleteIdle(ctx(t), "IDLE23", t0, at)
	require.NoError(t, err)
	assert.False(t, deleted, "idle since exactly the limit is not before it")

	require.NoError(t, reg.Touch(ctx(t), "IDLE23", t0.Add(2*time.Hour)))
	deleted, err = reg.DeleteIdle(ctx(t), "IDLE23", t0.Add(time.Hour), at)
	require.NoError(t, err)
	assert.False(t, deleted, "touched since")
	_, err = reg.Room(ctx(t), "IDLE23")
	require.NoError(t, err, "still there")

	deleted, err = reg.DeleteIdle(ctx(t), "IDLE23", t0.Add(2*time.Hour+time.Microsecond), at)
	require.NoError(t, err)
	assert.True(t, deleted)
	_, err = reg.Room(ctx(t), "IDLE23")
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	n, err := reg.Count(ctx(t))
	require.NoError(t, err)
	assert.Zero(t, n)

	deleted, err = reg.DeleteIdle(ctx(t), "IDLE23", t0.Add(24*time.Hour), at)
	require.NoError(t, err)
	assert.False(t, deleted, "already gone")

	// Tombstoned at `at`.
	rules := engine.CreateRules{ReuseAfter: time.Hour}
	again := room("IDLE23", "u2")
	again.CreatedAt = at.Add(time.Hour - time.Microsecond)
	assert.ErrorIs(t, reg.Create(ctx(t), again, rules), rooms.ErrCodeTaken)
	again.CreatedAt = at.Add(time.Hour)
	assert.NoError(t, reg.Create(ctx(t), again, rules))
}

func registryIdle(t *testing.T, reg engine.Registry) {
	for i, code := range []string{"IDLEA2", "IDLEB2", "IDLEC2"} {
		r := room(code, "u1")
		r.IdleSince = t0.Add(time.Duration(i) * time.Hour)
		require.NoError(t, reg.Create(ctx(t), r, free))
	}
	tests := []struct {
		before time.Time
		want   []string
	}{
		{t0, nil},
		{t0.Add(time.Microsecond), []string{"IDLEA2"}},
		{t0.Add(time.Hour), []string{"IDLEA2"}},
		{t0.Add(2 * time.Hour), []string{"IDLEA2", "IDLEB2"}},
		{t0.Add(3 * time.Hour), []string{"IDLEA2", "IDLEB2", "IDLEC2"}},
	}
	for _, tt := range tests {
		got, err := reg.Idle(ctx(t), tt.before)
		require.NoError(t, err)
		assert.ElementsMatch(t, tt.want, got, "before t0+%s", tt.before.Sub(t0))
	}
	require.NoError(t, reg.Touch(ctx(t), "IDLEA2", t0.Add(5*time.Hour)))
	got, err := reg.Idle(ctx(t), t0.Add(3*time.Hour))
	require.NoError(t, err)
	assert.ElementsMatch(t, []string{"IDLEB2", "IDLEC2"}, got, "after a Touch")
}

func registryCount(t *testing.T, reg engine.Registry) {
	count := func() int {
		n, err := reg.Count(ctx(t))
		require.NoError(t, err)
		return n
	}
	assert.Zero(t, count(), "empty")
	for i := range 3 {
		require.NoError(t, reg.Create(ctx(t), room(fmt.Sprintf("CNT%d", i+2), "u1"), free))
	}
	assert.Equal(t, 3, count())
	_ = reg.Create(ctx(t), room("CNT2", "u2"), free) // taken: not counted twice
	assert.Equal(t, 3, count())
	require.NoError(t, reg.Delete(ctx(t), "CNT3", "u1", t0))
	assert.Equal(t, 2, count())
	deleted, err := reg.DeleteIdle(ctx(t), "CNT4", t0.Add(time.Hour), t0)
	require.NoError(t, err)
	require.True(t, deleted)
	assert.Equal(t, 1, count())
}
