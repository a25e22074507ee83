package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// write saves the JSON, BENCHMARKS.md and the plots, and prints the table.
func (b *bench) write(rep *report.Report, stdout io.Writer) error {
	jsonPath, outDir := b.cfg.JSONPath, b.cfg.OutDir
	if !filepath.IsAbs(jsonPath) {
		jsonPath = filepath.Join(b.root, jsonPath)
	}
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(b.root, outDir)
	}
	if err := rep.WriteJSON(jsonPath); err != nil {
		return err
	}
	img := filepath.Join(outDir, "img")
	if err := os.MkdirAll(img, 0o755); err != nil {
		return err
	}
	if len(rep.Burst) > 0 { // nothing to plot without the fan-out
		if err := rep.Plots(img); err != nil {
			return err
		}
	}
	var md bytes.Buffer
	if err := rep.Markdown(&md, "img"); err != nil {
		return err
	}
	mdPath := filepath.Join(outDir, "BENCHMARKS.md")
	if err := os.WriteFile(mdPath, md.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintln(stdout)
	if err := rep.Table(stdout); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "\nwrote %s, %s and %s\n", mdPath, filepath.Join(img, "*.png"), jsonPath)
	return nil
}
