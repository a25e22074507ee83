package main

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRun(t *testing.T) {
	for _, conc := range []int{1, 3} {
		var out bytes.Buffer
		require.NoError(t, run([]string{"-memory", "64", "-time", "1", "-n", "4", "-conc", strconv.Itoa(conc)}, &out))
		var got timing
		require.NoError(t, json.Unmarshal(out.Bytes(), &got))
		assert.Equal(t, conc, got.Concurrency)
		assert.Positive(t, got.MinNs)
		assert.LessOrEqual(t, got.MinNs, got.MedianNs)
		assert.Positive(t, got.PerSec)
		assert.GreaterOrEqual(t, got.WarmRounds, 1)
		assert.LessOrEqual(t, got.WarmRounds, maxWarmRounds)
	}
}

func TestRunRefusesBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-n", "0"}, {"-conc", "0"}, {"-threads", "0"}, {"-threads", "256"}, {"-bogus"}} {
		assert.Error(t, run(args, &bytes.Buffer{}), args)
	}
}
