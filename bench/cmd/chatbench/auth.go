package main

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/authload"
	"github.com/grpcchatter/grpcchatter/bench/internal/proc"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// loginPool is how many accounts the login measurement cycles through.
const loginPool = 64

func (b *bench) auth(ctx context.Context) (*report.Auth, error) {
	params := authload.Params{MemoryKiB: b.cfg.Argon2Memory, Time: b.cfg.Argon2Time, Threads: 1}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	metricsPort, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	dir, err := b.dataDir("auth")
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := proc.Start(ctx, "auth", b.authBin, []string{
		"SECRET=" + b.secret,
		"REST_SERVER_ADDRESS=127.0.0.1",
		"REST_SERVER_PORT=" + strconv.Itoa(port),
		"DATA_DIR=" + dir,
		"METRICS_ADDRESS=127.0.0.1:" + strconv.Itoa(metricsPort),
		"LOG_LEVEL=warn",
		"ARGON2_MEMORY_KIB=" + strconv.Itoa(int(params.MemoryKiB)),
		"ARGON2_TIME=" + strconv.Itoa(int(params.Time)),
		"ARGON2_THREADS=1",
		"REQUEST_TIMEOUT=2m",
		// Failed logins are part of the measurement, not an attack.
		"LOGIN_MAX_FAILURES=1000",
		"LOGIN_MAX_ADDRESS_FAILURES=100000",
		"LOGIN_MAX_ACCOUNT_FAILURES=100000",
		// Every registration comes from one loopback address.
		"REGISTER_RATE=1000000",
		"REGISTER_BURST=1000000",
	}, addr)
	if err != nil {
		return nil, err
	}
	defer p.Stop()
	c := authload.NewClient("http://" + addr)
	defer c.Close()

	// The idle run leaves this process with a large heap to collect; let
	// that happen now, not while the hash is being timed next to it.
	runtime.GC()
	debug.FreeOSMemory()
	b.waitQuiet(ctx)
	a := &report.Auth{Params: params, Cores: runtime.NumCPU()}
	// hashtime runs with the service's GOGC, so that the ceiling is the
	// same hashes in the same runtime, with nothing else around them.
	if a.GCPercent, err = c.GCPercent(ctx, "http://127.0.0.1:"+strconv.Itoa(metricsPort)); err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	b.logf("auth: timing argon2id hashes (m=%d KiB, t=%d, p=1, GOGC=%d) in fresh processes", params.MemoryKiB, params.Time, a.GCPercent)
	// Batches of each, five now and one after every measurement below,
	// so that the ceiling comes from the same window as the load. The
	// ceiling is the median batch: each load measurement is an average
	// over seconds that meets the machine's noise as it comes, and so does
	// the median batch, where the fastest of a dozen short batches is the
	// luckiest moment of the window (shown too). Alone: a hash with the
	// machine to itself. Together: one hashing goroutine per core, as a
	// saturated server runs them.
	var alone, together []authload.HashTiming
	timeHashes := func() error {
		h, err := authload.HashTime(ctx, b.hashBin, params, 5, 1, a.GCPercent)
		if err != nil {
			return err
		}
		alone = append(alone, h)
		if h, err = authload.HashTime(ctx, b.hashBin, params, 10, a.Cores, a.GCPercent); err != nil {
			return err
		}
		together = append(together, h)
		a.HashBatches++
		// Alone: by hash time, shortest first; together: by rate, highest first.
		byTime := slices.SortedFunc(slices.Values(alone), func(x, y authload.HashTiming) int { return cmp.Compare(x.MedianNs, y.MedianNs) })
		byRate := slices.SortedFunc(slices.Values(together), func(x, y authload.HashTiming) int { return cmp.Compare(y.PerSec, x.PerSec) })
		mid := byTime[len(byTime)/2]
		a.HashMs = float64(mid.MedianNs) / 1e6
		a.SequentialCeilingPerSec = float64(a.Cores) / (float64(mid.MedianNs) / 1e9)
		med := byRate[len(byRate)/2]
		a.HashTogetherMs = float64(med.MedianNs) / 1e6
		a.CeilingPerSec = med.PerSec
		a.FastestCeilingPerSec = byRate[0].PerSec
		return nil
	}
	for range 5 {
		if err := timeHashes(); err != nil {
			return nil, err
		}
	}
	b.logf("  a hash alone %.1f ms, %d at once %.1f ms each: ceiling %.1f hashes/s (sequential %.1f)", a.HashMs, a.Cores, a.HashTogetherMs, a.CeilingPerSec, a.SequentialCeilingPerSec)

	run := strconv.FormatInt(time.Now().UnixNano()%1e6, 36)
	for _, conc := range b.cfg.AuthConc {
		b.waitQuiet(ctx)
		prefix := fmt.Sprintf("r%s-%d-", run, conc)
		st := c.Run(ctx, "register", "/register", conc, b.cfg.AuthDuration,
			func(i int64) string { return prefix + strconv.FormatInt(i, 36) }, authload.Password, http.StatusOK)
		a.Register = append(a.Register, st)
		if err := timeHashes(); err != nil {
			return nil, err
		}
		b.logf("  register ×%d: %.1f/s (%.0f%% of the ceiling so far), p50 %.0f ms, errors %d %s", conc, st.PerSec, 100*st.PerSec/a.CeilingPerSec, st.P50Ms, st.Errors, st.FirstError)
	}

	pool := make([]string, loginPool)
	setup := c.Run(ctx, "register", "/register", loginPool/2, 0, func(i int64) string {
		if i < loginPool {
			pool[i] = fmt.Sprintf("l%s-%d", run, i)
			return pool[i]
		}
		return fmt.Sprintf("lx%s-%d", run, i)
	}, authload.Password, http.StatusOK)
	if setup.Errors > 0 {
		return nil, fmt.Errorf("auth: registering the login accounts: %s\n%s", setup.FirstError, p.Log())
	}
	for _, conc := range b.cfg.AuthConc {
		b.waitQuiet(ctx)
		st := c.Run(ctx, "login", "/login", conc, b.cfg.AuthDuration,
			func(i int64) string { return pool[i%loginPool] }, authload.Password, http.StatusOK)
		a.Login = append(a.Login, st)
		if err := timeHashes(); err != nil {
			return nil, err
		}
		b.logf("  login ×%d: %.1f/s (%.0f%% of the ceiling so far), p50 %.0f ms, errors %d %s", conc, st.PerSec, 100*st.PerSec/a.CeilingPerSec, st.P50Ms, st.Errors, st.FirstError)
	}

	for _, steps := range [][]authload.Step{a.Register, a.Login} {
		for i := range steps {
			steps[i].OfCeiling = steps[i].PerSec / a.CeilingPerSec
			steps[i].OfSequentialCeiling = steps[i].PerSec / a.SequentialCeilingPerSec
		}
	}
	b.logf("  after %d batches: a hash alone %.1f ms, %d at once %.1f ms each: ceiling %.1f hashes/s (sequential %.1f)", a.HashBatches, a.HashMs, a.Cores, a.HashTogetherMs, a.CeilingPerSec, a.SequentialCeilingPerSec)

	const n = 41
	unknown, wrong, err := c.MedianPair(ctx, "/login", n,
		func(i int) (string, string) { return fmt.Sprintf("nobody%s-%d", run, i), authload.Password },
		func(i int) (string, string) { return pool[i%loginPool], "wrong-password-1" })
	if err != nil {
		return nil, err
	}
	a.UnknownUserMs = float64(unknown) / float64(time.Millisecond)
	a.WrongPasswordMs = float64(wrong) / float64(time.Millisecond)
	if a.WrongPasswordMs > 0 {
		a.UnknownVsWrong = a.UnknownUserMs / a.WrongPasswordMs
	}
	b.logf("  login median: unknown user %.1f ms, wrong password %.1f ms", a.UnknownUserMs, a.WrongPasswordMs)
	if a.VerifyUserNs, a.VerifyRoomNs, err = authload.VerifyNsPerOp(b.secret); err != nil {
		return nil, err
	}
	b.logf("  token verification: user %.0f ns/op, room %.0f ns/op", a.VerifyUserNs, a.VerifyRoomNs)
	if p.Exited() {
		return nil, fmt.Errorf("auth exited during the run\n%s", p.Log())
	}
	return a, nil
}
