// Package store owns the chat service's data directory: one process at a
// time holds it (Open takes an exclusive lock that Close releases), and it
// reads the registry file that versions before the room database wrote
// (rooms.json), so that its rooms can be imported once and the file
// retired.
package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// FileName is the registry's file name inside the data directory.
const FileName = "rooms.json"

// lockName is the file locked while a process owns the data directory. It
// is separate from the registry, which is replaced by rename on every save.
const lockName = FileName + ".lock"

// version is the last format written; Load also reads version 1, which
// had no tombstones or idle times.
const version = 2

// RetiredName is what Retire renames the registry file to.
const RetiredName = FileName + ".imported"

// ErrLocked means another process holds the data directory.
var ErrLocked = errors.New("in use by another process")

// File is the registry file in a data directory.
type File struct {
	dir  string
	path string
	lock *os.File
}

type document struct {
	Version    int               `json:"version"`
	Rooms      []rooms.Room      `json:"rooms"`
	Tombstones []rooms.Tombstone `json:"tombstones,omitempty"`
}

// Open returns the registry file in dir, creating dir if needed. It fails
// if another process has dir open, and removes temporary files that a
// crash during a save left behind.
func Open(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: DATA_DIR %s: %w", dir, err)
	}
	lf, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: DATA_DIR %s: lock: %w", dir, err)
	}
	if err := lockFile(lf); err != nil {
		lf.Close()
		return nil, fmt.Errorf("store: DATA_DIR %s: %w (%v)", dir, ErrLocked, err)
	}
	// Holding the lock, no save of an earlier version is in progress: any
	// temporary file is a leftover.
	stale, _ := filepath.Glob(filepath.Join(dir, FileName+".*.tmp"))
	for _, p := range stale {
		_ = os.Remove(p)
	}
	return &File{dir: dir, path: filepath.Join(dir, FileName), lock: lf}, nil
}

// Close releases the data directory.
func (f *File) Close() error {
	if f.lock == nil {
		return nil
	}
	err := f.lock.Close() // closing the descriptor drops the lock
	f.lock = nil
	return err
}

// Load reads and validates the registry file, and reports whether there
// is one. An invalid entry fails the load, naming the entry.
func (f *File) Load() (rooms.Registry, bool, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return rooms.Registry{}, false, nil
	}
	if err != nil {
		return rooms.Registry{}, false, fmt.Errorf("store: read: %w", err)
	}
	var d document
	if err := json.Unmarshal(b, &d); err != nil {
		return rooms.Registry{}, false, fmt.Errorf("store: %s: %w", f.path, err)
	}
	if err := d.validate(); err != nil {
		return rooms.Registry{}, false, fmt.Errorf("store: %s: %w", f.path, err)
	}
	return rooms.Registry{Rooms: d.Rooms, Tombstones: d.Tombstones}, true, nil
}

// Retire renames the registry file to RetiredName, once its rooms are
// imported, so that it is never read again but stays for reference, and
// returns the new path.
func (f *File) Retire() (string, error) {
	to := filepath.Join(f.dir, RetiredName)
	if err := os.Rename(f.path, to); err != nil {
		return "", fmt.Errorf("store: retire %s: %w", f.path, err)
	}
	syncDir(f.dir)
	return to, nil
}

// syncDir fsyncs dir so that a rename in it survives a power cut.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func (d *document) validate() error {
	if d.Version != 1 && d.Version != version {
		return fmt.Errorf("unsupported version %d (want 1 or %d)", d.Version, version)
	}
	seen := make(map[string]bool, len(d.Rooms))
	for i, r := range d.Rooms {
		code, err := rooms.NormalizeCode(r.Code)
		switch {
		case err != nil || code != r.Code:
			return fmt.Errorf("rooms[%d]: short_code %q is not a canonical short code", i, r.Code)
		case seen[r.Code]:
			return fmt.Errorf("rooms[%d]: short_code %q appears twice", i, r.Code)
		case r.PasswordHash == "":
			return fmt.Errorf("rooms[%d] (%s): password_hash is empty", i, r.Code)
		case r.OwnerID == "":
			return fmt.Errorf("rooms[%d] (%s): owner_id is empty", i, r.Code)
		}
		seen[r.Code] = true
	}
	for i, t := range d.Tombstones {
		code, err := rooms.NormalizeCode(t.Code)
		if err != nil || code != t.Code {
			return fmt.Errorf("tombstones[%d]: short_code %q is not a canonical short code", i, t.Code)
		}
	}
	return nil
}
