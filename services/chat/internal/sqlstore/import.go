package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
)

// tombstoneRow is the GORM mapping of the tombstones table.
type tombstoneRow struct {
	Code      string    `gorm:"column:code;primaryKey"`
	DeletedAt time.Time `gorm:"column:deleted_at"`
}

// TableName tells GORM the table, which the migrations own.
func (tombstoneRow) TableName() string { return "tombstones" }

// Import adds the rooms and tombstones of a registry that an older version
// kept in a file, in one transaction, and reports how many rooms it
// added. Codes the database already has are skipped, so importing a file
// again after a crash (before the file was retired) changes nothing. A
// room without an idle time (a version 1 file) is idle from now, as the
// older version took it when it loaded the file.
func (s *Store) Import(ctx context.Context, reg rooms.Registry) (n int, err error) {
	now := time.Now()
	roomRows := make([]roomRow, len(reg.Rooms))
	for i, r := range reg.Rooms {
		if r.IdleSince.IsZero() {
			r.IdleSince = now
		}
		roomRows[i] = newRoomRow(r)
	}
	tombRows := make([]tombstoneRow, len(reg.Tombstones))
	for i, t := range reg.Tombstones {
		tombRows[i] = tombstoneRow{Code: t.Code, DeletedAt: utc(t.DeletedAt)}
	}

	// A one-off of maybe thousands of rows: more time than one call.
	ctx, cancel := context.WithTimeoutCause(ctx, 4*s.timeout, ErrTimeout)
	defer cancel()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		skip := tx.Clauses(clause.OnConflict{DoNothing: true})
		if len(roomRows) > 0 {
			res := skip.CreateInBatches(roomRows, insertBatch)
			if res.Error != nil {
				return res.Error
			}
			n = int(res.RowsAffected)
		}
		if len(tombRows) > 0 {
			return skip.CreateInBatches(tombRows, insertBatch).Error
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: import: %w", classify(ctx, err))
	}
	return n, nil
}

// ImportJSON imports dataDir/rooms.json, the registry file of an older
// version, with Import, then retires it (renames it to
// rooms.json.imported) so that it is read only once, and reports how many
// rooms it added; without the file it does nothing.
//
// It takes the data directory's lock (store.Open) for the while, so it
// fails with store.ErrLocked when another process, or this one, holds
// the directory: a caller that holds it already loads the file itself and
// calls Import.
func (s *Store) ImportJSON(ctx context.Context, dataDir string) (n int, err error) {
	// Without a file there is nothing to lock: don't make a lock file.
	if _, err := os.Stat(filepath.Join(dataDir, store.FileName)); errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	f, err := store.Open(dataDir)
	if err != nil {
		return 0, fmt.Errorf("sqlstore: import: %w", err)
	}
	defer f.Close()
	reg, found, err := f.Load()
	if err != nil || !found {
		return 0, err
	}
	if n, err = s.Import(ctx, reg); err != nil {
		return 0, err
	}
	if _, err := f.Retire(); err != nil {
		return 0, fmt.Errorf("sqlstore: import: %w", err)
	}
	return n, nil
}
