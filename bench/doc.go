// Package bench is the home of the GRPCChatter load generator.
package bench
