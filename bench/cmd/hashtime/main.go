// Command hashtime times argon2id hashes in a fresh, small process, the
// way the auth service runs them, and prints the timings as JSON (times in
// nanoseconds).
//
// With -conc 1 (the default) it hashes n times in a row and reports the
// median and fastest wall time and the CPU time per hash: the time of one
// hash with the machine to itself.
//
// With -conc C, C goroutines hash n times each, all at once. It reports
// per_s, hashes completed per second of wall time: the most a server
// could answer if it did nothing but hash, C at a time. That can be less
// than C ÷ (time of one hash alone), since hashes running together share
// memory bandwidth and caches, and the runtime's work for their memory
// (zeroing, collection) then has no idle core to run on.
//
// Either way the timed hashes come after untimed ones that bring the heap
// to its steady size: until the process's heap holds the memory a hash
// needs, each hash also page-faults fresh memory in from the kernel,
// which a long-running service does not (on a VM that can double a
// hash's time). The timed hashes' page faults are reported too.
package main

import (
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/argon2"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hashtime:", err)
		os.Exit(2)
	}
}

// timing is the JSON that hashtime prints.
type timing struct {
	Concurrency int     `json:"concurrency"`
	MedianNs    int64   `json:"median_ns"`
	MinNs       int64   `json:"min_ns"`
	CPUNsPerOp  int64   `json:"cpu_ns_per_hash"`
	PerSec      float64 `json:"per_s"`
	// FaultsPerOp is minor page faults per timed hash; WarmRounds is how
	// many rounds of untimed hashes came first.
	FaultsPerOp int64 `json:"faults_per_hash"`
	WarmRounds  int   `json:"warm_rounds"`
}

// maxWarmRounds bounds the untimed rounds; a heap that keeps faulting
// after this many is what the timed hashes get.
const maxWarmRounds = 30

func run(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("hashtime", flag.ContinueOnError)
	mem := fs.Uint("memory", 19*1024, "argon2id memory in KiB")
	t := fs.Uint("time", 2, "argon2id passes")
	threads := fs.Uint("threads", 1, "argon2id lanes")
	n := fs.Int("n", 9, "hashes to time, per goroutine")
	conc := fs.Int("conc", 1, "goroutines hashing at once")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *n < 1 || *conc < 1 || *threads < 1 || *threads > 255 {
		return fmt.Errorf("-n, -conc and -threads must be positive (threads at most 255)")
	}
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	hash := func() {
		argon2.IDKey([]byte("correct horse battery"), salt, uint32(*t), uint32(*mem), uint8(*threads), 32)
	}

	// A round whose hashes fault in less than a tenth of their memory
	// found the heap warm; three in a row, since the heap keeps growing
	// until the collector's goal has settled.
	pages := int64(*mem) * 1024 / int64(os.Getpagesize())
	rounds, warmInARow := 0, 0
	for rounds < maxWarmRounds && warmInARow < 3 {
		f0 := faults()
		var warm sync.WaitGroup
		for range *conc {
			warm.Go(hash)
		}
		warm.Wait()
		rounds++
		if (faults()-f0)/int64(*conc) < pages/10 {
			warmInARow++
		} else {
			warmInARow = 0
		}
	}
	ds := make([]time.Duration, *conc**n)
	var wg sync.WaitGroup
	cpu0, f0 := cpuTime(), faults()
	start := time.Now()
	for w := range *conc {
		// Owned by run; ends after its n hashes.
		wg.Go(func() {
			for i := range *n {
				t0 := time.Now()
				hash()
				ds[w**n+i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	wall := time.Since(start)
	cpu, flts := cpuTime()-cpu0, faults()-f0
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	return json.NewEncoder(stdout).Encode(timing{
		Concurrency: *conc,
		MedianNs:    ds[len(ds)/2].Nanoseconds(),
		MinNs:       ds[0].Nanoseconds(),
		CPUNsPerOp:  cpu.Nanoseconds() / int64(len(ds)),
		PerSec:      float64(len(ds)) / wall.Seconds(),
		FaultsPerOp: flts / int64(len(ds)),
		WarmRounds:  rounds,
	})
}

// faults is the process's count of minor page faults so far.
func faults() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Minflt
}

// cpuTime is the process's user plus system time.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
