package store

import (
	"context"
	"fmt"
	"time"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// userRow is the GORM mapping of the users table.
type userRow struct {
	ID           int64     `gorm:"column:id;primaryKey;autoIncrement"`
	Name         string    `gorm:"column:name"`
	NameKey      string    `gorm:"column:name_key"`
	PasswordHash string    `gorm:"column:password_hash"`
	CreatedAt    time.Time `gorm:"column:created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

// TableName tells GORM the table, which the migrations own.
func (userRow) TableName() string { return "users" }

func (r userRow) user() users.User {
	return users.User{ID: r.ID, Name: r.Name, PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt.UTC()}
}

// Create stores a new account. It fails with users.ErrNameTaken when an
// account with the same name in any case exists, relying on the unique
// index rather than a prior lookup so that concurrent registrations of
// one name cannot both succeed.
func (s *Store) Create(ctx context.Context, name, passwordHash string) (users.User, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	// Microseconds: the finest precision both databases keep, so the
	// returned time equals the one read back later.
	now := time.Now().UTC().Truncate(time.Microsecond)
	row := userRow{Name: name, NameKey: users.Key(name), PasswordHash: passwordHash, CreatedAt: now, UpdatedAt: now}
	err := s.db.WithContext(ctx).Create(&row).Error
	s.health.wrote(err)
	if err != nil {
		return users.User{}, fmt.Errorf("create user: %w", classify(ctx, err))
	}
	return row.user(), nil
}

// ByName returns the account whose name equals name in any case.
func (s *Store) ByName(ctx context.Context, name string) (users.User, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var row userRow
	err := s.db.WithContext(ctx).Where("name_key = ?", users.Key(name)).Take(&row).Error
	if err != nil {
		return users.User{}, fmt.Errorf("user by name: %w", classify(ctx, err))
	}
	return row.user(), nil
}

// UpdateHash replaces the password hash of account id.
func (s *Store) UpdateHash(ctx context.Context, id int64, passwordHash string) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Model(&userRow{}).Where("id = ?", id).
		Updates(map[string]any{"password_hash": passwordHash, "updated_at": time.Now().UTC()})
	s.health.wrote(res.Error)
	if res.Error != nil {
		return fmt.Errorf("update hash: %w", classify(ctx, res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update hash of user %d: %w", id, users.ErrNotFound)
	}
	return nil
}
