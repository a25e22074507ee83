// Package store persists the room registry to a JSON file.
//
// The registry is small (a few hundred bytes per room) and written only on
// create and delete, so a whole-file rewrite is simpler and safer than a
// database: the file is written to a temporary name, fsynced and renamed
// over the old one, so a crash leaves either the old or the new registry.
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

// File is the registry file in a data directory.
type File struct {
	path string
}

type document struct {
	Version int          `json:"version"`
	Rooms   []rooms.Room `json:"rooms"`
}

// Open returns the registry file in dir, creating dir if needed.
func Open(dir string) (*File, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("store: data dir: %w", err)
	}
	return &File{path: filepath.Join(dir, FileName)}, nil
}

// Load reads the registry; a missing file is an empty registry.
func (f *File) Load() ([]rooms.Room, error) {
	b, err := os.ReadFile(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("store: read: %w", err)
	}
	var d document
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("store: %s: %w", f.path, err)
	}
	return d.Rooms, nil
}

// Save replaces the registry atomically. Callers serialise calls.
func (f *File) Save(rs []rooms.Room) error {
	b, err := json.MarshalIndent(document{Version: 1, Rooms: rs}, "", "  ")
	if err != nil {
		return fmt.Errorf("store: encode: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(f.path), FileName+".*.tmp")
	if err != nil {
		return fmt.Errorf("store: temp file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("store: write: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("store: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return fmt.Errorf("store: rename: %w", err)
	}
	// fsync the directory so the rename itself survives a power cut.
	if d, err := os.Open(filepath.Dir(f.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
