// Command hashtime times argon2id hashes in a fresh, small process, the
// way the auth service runs them, and prints as JSON the median and
// fastest wall time and the CPU time per hash, in nanoseconds. The load
// generator runs it to compute the hash-bound ceiling from the CPU time,
// which, unlike wall time, other work on a shared machine barely moves.
package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sort"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"
)

func main() {
	mem := flag.Uint("memory", 19*1024, "argon2id memory in KiB")
	t := flag.Uint("time", 2, "argon2id passes")
	threads := flag.Uint("threads", 1, "argon2id lanes")
	n := flag.Int("n", 9, "hashes to time")
	flag.Parse()
	if *n < 1 || *threads < 1 || *threads > 255 {
		fmt.Fprintln(os.Stderr, "hashtime: -n and -threads must be positive (threads at most 255)")
		os.Exit(2)
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	ds := make([]time.Duration, *n)
	cpu0 := cpuTime()
	for i := range ds {
		start := time.Now()
		argon2.IDKey([]byte("correct horse battery"), salt, uint32(*t), uint32(*mem), uint8(*threads), 32)
		ds[i] = time.Since(start)
	}
	cpu := cpuTime() - cpu0
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	_ = json.NewEncoder(os.Stdout).Encode(map[string]int64{
		"median_ns":       ds[len(ds)/2].Nanoseconds(),
		"min_ns":          ds[0].Nanoseconds(),
		"cpu_ns_per_hash": cpu.Nanoseconds() / int64(*n),
	})
}

// cpuTime is the process's user plus system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
