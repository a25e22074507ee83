package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// roomRow is the GORM mapping of the rooms table.
type roomRow struct {
	Code         string    `gorm:"column:code;primaryKey"`
	Name         string    `gorm:"column:name"`
	PasswordHash string    `gorm:"column:password_hash"`
	OwnerID      string    `gorm:"column:owner_id"`
	CreatedAt    time.Time `gorm:"column:created_at;autoCreateTime:false"` // the caller's, not GORM's clock
	IdleSince    time.Time `gorm:"column:idle_since"`
}

// TableName tells GORM the table, which the migrations own.
func (roomRow) TableName() string { return "rooms" }

func newRoomRow(r rooms.Room) roomRow {
	return roomRow{Code: r.Code, Name: r.Name, PasswordHash: r.PasswordHash, OwnerID: r.OwnerID,
		CreatedAt: utc(r.CreatedAt), IdleSince: utc(r.IdleSince)}
}

func (r roomRow) room() rooms.Room {
	return rooms.Room{Code: r.Code, Name: r.Name, PasswordHash: r.PasswordHash, OwnerID: r.OwnerID,
		CreatedAt: r.CreatedAt.UTC(), IdleSince: r.IdleSince.UTC()}
}

// utc is how every time is written: to the microsecond, the finest that
// both databases keep (PostgreSQL would round, not truncate), and in UTC,
// so that SQLite's time text sorts in time order.
func utc(t time.Time) time.Time { return t.Truncate(time.Microsecond).UTC() }

// ceil is the bound of a strict "before t" on stored times: a time kept to
// the microsecond is before t exactly when it is before t rounded up.
func ceil(t time.Time) time.Time {
	if c := utc(t); !c.Equal(t) {
		return c.Add(time.Microsecond)
	}
	return utc(t)
}

// Create stores r unless its owner already has rules.MaxOwned rooms
// (rooms.ErrTooManyRooms, checked first) or its code names a room or one
// deleted less than rules.ReuseAfter before r.CreatedAt
// (rooms.ErrCodeTaken). Times are kept to the microsecond.
func (s *Store) Create(ctx context.Context, r rooms.Room, rules engine.CreateRules) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	row := newRoomRow(r)
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		// On SQLite the immediate transaction already runs alone. On
		// PostgreSQL, creates by one owner take turns so that two cannot
		// both see room for one more; creates and deletes of one code take
		// turns so that a create cannot miss the tombstone of a delete
		// committing meanwhile. Always owner first: no deadlock.
		if err := s.lock(tx, "owner", r.OwnerID); err != nil {
			return err
		}
		if err := s.lock(tx, "code", r.Code); err != nil {
			return err
		}
		if rules.MaxOwned > 0 {
			var owned int64
			if err := tx.Model(&roomRow{}).Where("owner_id = ?", r.OwnerID).Count(&owned).Error; err != nil {
				return err
			}
			if owned >= int64(rules.MaxOwned) {
				return rooms.ErrTooManyRooms
			}
		}
		// Tombstones past their reuse time protect nothing any more: they
		// go here, so that the table holds only the recent ones.
		if err := tx.Exec("DELETE FROM tombstones WHERE deleted_at <= ?", row.CreatedAt.Add(-rules.ReuseAfter)).Error; err != nil {
			return err
		}
		var tomb []time.Time
		if err := tx.Raw("SELECT deleted_at FROM tombstones WHERE code = ?", r.Code).Scan(&tomb).Error; err != nil {
			return err
		}
		if len(tomb) > 0 {
			if row.CreatedAt.Sub(tomb[0]) < rules.ReuseAfter {
				return rooms.ErrCodeTaken
			}
			// The new room supersedes it; its own deletion makes a new one.
			if err := tx.Exec("DELETE FROM tombstones WHERE code = ?", r.Code).Error; err != nil {
				return err
			}
		}
		err := tx.Create(&row).Error
		if sqldb.Unique(err) { // a live room has the code
			return rooms.ErrCodeTaken
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("create room %s: %w", r.Code, classify(ctx, err))
	}
	return nil
}

// lock takes a PostgreSQL advisory lock on (kind, key) until the
// transaction ends. SQLite needs none: its transactions are immediate.
func (s *Store) lock(tx *gorm.DB, kind, key string) error {
	if s.pool.Dialect() != sqldb.Postgres {
		return nil
	}
	h := fnv.New64a()
	h.Write([]byte("chat/" + kind + "/" + key))
	return tx.Exec("SELECT pg_advisory_xact_lock(?)", int64(h.Sum64())).Error
}

// Room returns the room with code, or rooms.ErrNotFound.
func (s *Store) Room(ctx context.Context, code string) (rooms.Room, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var row roomRow
	err := s.db.WithContext(ctx).Where("code = ?", code).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return rooms.Room{}, rooms.ErrNotFound
	}
	if err != nil {
		return rooms.Room{}, fmt.Errorf("room %s: %w", code, classify(ctx, err))
	}
	return row.room(), nil
}

// Touch moves the room's IdleSince forward to at, never back.
func (s *Store) Touch(ctx context.Context, code string, at time.Time) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	at = utc(at)
	db := s.db.WithContext(ctx)
	res := db.Exec("UPDATE rooms SET idle_since = ? WHERE code = ? AND idle_since < ?", at, code, at)
	if res.Error != nil {
		return fmt.Errorf("touch room %s: %w", code, classify(ctx, res.Error))
	}
	if res.RowsAffected > 0 {
		return nil
	}
	// Nothing moved: the room is idle since at or later, or is unknown.
	var n int64
	if err := db.Model(&roomRow{}).Where("code = ?", code).Count(&n).Error; err != nil {
		return fmt.Errorf("touch room %s: %w", code, classify(ctx, err))
	}
	if n == 0 {
		return rooms.ErrNotFound
	}
	return nil
}

// Delete deletes the room if ownerID owns it (else rooms.ErrNotOwner) and
// tombstones its code at at. The room's messages stay until the engine
// drops them from the log.
func (s *Store) Delete(ctx context.Context, code, ownerID string, at time.Time) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "code", code); err != nil {
			return err
		}
		var owner []string
		if err := tx.Raw("SELECT owner_id FROM rooms WHERE code = ?", code).Scan(&owner).Error; err != nil {
			return err
		}
		switch {
		case len(owner) == 0:
			return rooms.ErrNotFound
		case owner[0] != ownerID:
			return rooms.ErrNotOwner
		}
		if err := tx.Exec("DELETE FROM rooms WHERE code = ?", code).Error; err != nil {
			return err
		}
		return tombstone(tx, code, at)
	})
	if err != nil {
		return fmt.Errorf("delete room %s: %w", code, classify(ctx, err))
	}
	return nil
}

// DeleteIdle deletes the room, tombstoning its code at at, if it has been
// idle since before idleBefore, and reports whether it did. An unknown
// code reports false: a sweep may lose a race with Delete.
func (s *Store) DeleteIdle(ctx context.Context, code string, idleBefore, at time.Time) (bool, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var deleted bool
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if err := s.lock(tx, "code", code); err != nil {
			return err
		}
		// The condition is in the DELETE itself: on PostgreSQL a Touch
		// committing meanwhile is seen when the row lock is granted.
		res := tx.Exec("DELETE FROM rooms WHERE code = ? AND idle_since < ?", code, ceil(idleBefore))
		if res.Error != nil || res.RowsAffected == 0 {
			return res.Error
		}
		deleted = true
		return tombstone(tx, code, at)
	})
	if err != nil {
		return false, fmt.Errorf("delete idle room %s: %w", code, classify(ctx, err))
	}
	return deleted, nil
}

// tombstone records that code was deleted at at; a code deleted twice
// (created again after ReuseAfter) keeps the later time.
func tombstone(tx *gorm.DB, code string, at time.Time) error {
	return tx.Exec(`INSERT INTO tombstones (code, deleted_at) VALUES (?, ?)
		ON CONFLICT (code) DO UPDATE SET deleted_at = excluded.deleted_at`, code, utc(at)).Error
}

// Idle lists, sorted, the codes of the rooms idle since before before.
func (s *Store) Idle(ctx context.Context, before time.Time) ([]string, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var codes []string
	err := s.db.WithContext(ctx).Raw("SELECT code FROM rooms WHERE idle_since < ? ORDER BY code", ceil(before)).
		Scan(&codes).Error
	if err != nil {
		return nil, fmt.Errorf("idle rooms: %w", classify(ctx, err))
	}
	return codes, nil
}

// Owned is the number of rooms ownerID owns (an index scan of
// rooms_owner_id_idx).
func (s *Store) Owned(ctx context.Context, ownerID string) (int, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var n int64
	if err := s.db.WithContext(ctx).Model(&roomRow{}).Where("owner_id = ?", ownerID).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count rooms owned: %w", classify(ctx, err))
	}
	return int(n), nil
}

// Count is the number of rooms.
func (s *Store) Count(ctx context.Context) (int, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var n int64
	if err := s.db.WithContext(ctx).Model(&roomRow{}).Count(&n).Error; err != nil {
		return 0, fmt.Errorf("count rooms: %w", classify(ctx, err))
	}
	return int(n), nil
}
