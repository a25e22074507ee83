// Package migrations embeds the versioned SQL schema of the chat service.
//
// Each dialect has its own directory (postgres, sqlite) holding files named
// NNNN_description.sql. A version, once released, is never edited; changes
// go into a new file with the next number in both directories.
package migrations

import "embed"

// FS holds postgres/*.sql and sqlite/*.sql.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
