// Package proto holds the GRPCChatter protocol definitions and the Go code
// generated from them.
package proto
