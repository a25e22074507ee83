package sqldb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// privateFiles makes dir and the database file at path readable by the
// server's user only, since the file holds password hashes. Modes are
// narrowed, never widened: a directory made read-only on purpose stays
// so, and Open fails on it rather than writing.
func privateFiles(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqldb: DATA_DIR %s: %w", dir, err)
	}
	if err := narrow(dir, 0o700); err != nil {
		return fmt.Errorf("sqldb: DATA_DIR %s: %w", dir, err)
	}
	// SQLite makes its -wal and -shm files next to the database: a
	// directory it cannot write to fails later, and less clearly.
	probe, err := os.CreateTemp(dir, ".sqldb-probe-*")
	if err != nil {
		return fmt.Errorf("sqldb: DATA_DIR %s must be writable, for SQLite's journal: %w", dir, err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return fmt.Errorf("sqldb: DATA_DIR %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqldb: database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqldb: database file: %w", err)
	}
	if err := narrow(path, 0o600); err != nil {
		return fmt.Errorf("sqldb: database file: %w", err)
	}
	return nil
}

// privateSidecars narrows SQLite's -wal and -shm files, which it makes
// with the database file's mode but which an older version may have left
// wider.
func privateSidecars(path string) error {
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := narrow(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqldb: %w", err)
		}
	}
	return nil
}

// narrow clears the permission bits of path outside mask.
func narrow(path string, mask os.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&^mask != 0 {
		return os.Chmod(path, perm&mask)
	}
	return nil
}

// sqliteDSN sets the pragmas on every pooled connection: WAL so readers
// don't block the writer, busy_timeout so concurrent writers wait instead
// of failing with SQLITE_BUSY, foreign keys enforced as PostgreSQL does,
// and immediate transactions so that a transaction takes the write lock
// up front: its reads cannot go stale before it writes, and it cannot
// fail on a lock upgrade.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}
