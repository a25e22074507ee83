package sqlstore

import (
	"context"
	"fmt"
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
	ctx, cancel := context.WithTimeoutCause(ctx, 4*s.pool.Timeout(), ErrTimeout)
	defer cancel()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		skip := tx.Clauses(clause.OnConflict{DoNothing: true})
		if len(roomRows) > 0 {
			res := skip.CreateInBatches(roomRows, importBatch)
			if res.Error != nil {
				return res.Error
			}
			n = int(res.RowsAffected)
		}
		if len(tombRows) > 0 {
			return skip.CreateInBatches(tombRows, importBatch).Error
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlstore: import: %w", classify(ctx, err))
	}
	return n, nil
}

// ImportFile imports the registry file of an older version (rooms.json)
// in f, the data directory its caller holds, with Import, then retires it
// (renames it to rooms.json.imported) so that it is read only once, and
// reports how many rooms it added; without the file it does nothing.
func (s *Store) ImportFile(ctx context.Context, f *store.File) (n int, err error) {
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

// importBatch bounds the rows of one INSERT of an import.
const importBatch = 500
