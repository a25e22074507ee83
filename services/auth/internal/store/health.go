package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// probeInterval is the least time between two write probes (see
// writable): /readyz is public, so a flood of it must not become a flood
// of writes.
const probeInterval = time.Second

// probeName is the name of the row a write probe inserts and deletes. It
// is not a valid user name ('#'), so it can never be an account.
const probeName = "#write-probe"

// writeHealth remembers whether writes fail for lack of space, which a
// ping cannot see: a full disk still answers reads.
type writeHealth struct {
	mu        sync.Mutex
	fault     error // the last write's out-of-space error, as the driver gave it; nil while writes work
	lastProbe time.Time
	probing   bool
	interval  time.Duration // probeInterval; tests shorten it
}

// wrote records the outcome of a write: an out-of-space error marks
// writes as failing, a success clears that; any other error says
// nothing about space.
func (h *writeHealth) wrote(err error) {
	switch {
	case err == nil:
		h.mu.Lock()
		h.fault = nil
		h.mu.Unlock()
	case outOfSpace(err):
		h.mu.Lock()
		h.fault = err
		h.mu.Unlock()
	}
}

// due returns the current fault and whether the caller should probe now:
// only while writes are failing, one probe at a time, at most one per
// interval. A caller told to probe must report with probed.
func (h *writeHealth) due(now time.Time) (fault error, probe bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fault == nil || h.probing || now.Sub(h.lastProbe) < h.interval {
		return h.fault, false
	}
	h.probing, h.lastProbe = true, now
	return h.fault, true
}

// probed ends a probe that due asked for.
func (h *writeHealth) probed() {
	h.mu.Lock()
	h.probing = false
	h.mu.Unlock()
}

// outOfSpace reports whether err is a write that failed for want of
// space or a failing disk: SQLite's SQLITE_FULL (13) or SQLITE_IOERR
// (10), whatever the extended code, or PostgreSQL's disk_full (53100).
func outOfSpace(err error) bool {
	var (
		lite interface{ Code() int }
		pg   interface{ SQLState() string }
	)
	switch {
	case errors.As(err, &lite):
		code := lite.Code() & 0xff
		return code == 13 || code == 10
	case errors.As(err, &pg):
		return pg.SQLState() == "53100"
	}
	return false
}

// writable reports whether writes work, as far as the store knows: nil
// until a write fails for lack of space, then that write's error until a
// write succeeds again. While writes are failing it probes, at most once
// per probeInterval, with a write like a registration's that it undoes
// in the same transaction, so that readiness recovers by itself even
// when no client writes (a load balancer sends none to an instance that
// is not ready).
func (s *Store) writable(ctx context.Context) error {
	fault, probe := s.health.due(time.Now())
	if !probe {
		if fault != nil {
			return fmt.Errorf("%w: writes are failing: %w", users.ErrUnavailable, fault)
		}
		return nil
	}
	defer s.health.probed()
	err := s.probe(ctx)
	s.health.wrote(err)
	if err != nil {
		return fmt.Errorf("writes are failing: %w", err)
	}
	return nil
}

// probe inserts a row into users and deletes it again in one committed
// transaction: the commit has to write pages as a registration would, and
// the row is never seen by anyone else. The row is larger than an account
// (a few pages of filler), so that it needs new pages wherever in the
// table's and index's trees it lands: if it fits, an account fits.
func (s *Store) probe(ctx context.Context) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	now := time.Now().UTC()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		row := userRow{
			Name: probeName, NameKey: probeName,
			PasswordHash: strings.Repeat("x", 8<<10),
			CreatedAt:    now, UpdatedAt: now,
		}
		if err := tx.Create(&row).Error; err != nil {
			return err
		}
		return tx.Delete(&userRow{}, row.ID).Error
	})
	if err != nil {
		return fmt.Errorf("write probe: %w", classify(ctx, err))
	}
	return nil
}
