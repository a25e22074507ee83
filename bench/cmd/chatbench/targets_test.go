package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

func TestIdleHoldTarget(t *testing.T) {
	full := minIdleHold.Seconds()
	tests := []struct {
		name string
		idle *chatload.IdleResult
		want string
	}{
		{"not run", nil, report.NotMeasured},
		{"not held", &chatload.IdleResult{Opened: 10}, report.NotMeasured},
		{"held, none reset", &chatload.IdleResult{Held: 10, HoldSeconds: full}, report.Met},
		{"held too briefly", &chatload.IdleResult{Held: 10, HoldSeconds: full - 1}, report.NotMeasured},
		{"one reset", &chatload.IdleResult{Held: 10, HoldSeconds: full, ResetDuringHold: 1, ResetError: "EOF"}, report.NotMet},
		// All streams gone ends the hold early: a failure, not too short.
		{"all reset early", &chatload.IdleResult{Held: 10, HoldSeconds: 1, ResetDuringHold: 10}, report.NotMet},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, measured, st := idleHoldTarget(tt.idle)
			assert.Equal(t, tt.want, st, measured)
		})
	}
}
