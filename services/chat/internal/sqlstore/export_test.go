package sqlstore

import "gorm.io/gorm"

// DB gives tests the connection pool, to hold a transaction open.
func (s *Store) DB() *gorm.DB { return s.db }
