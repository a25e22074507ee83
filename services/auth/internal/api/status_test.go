package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// TestStatusTable pins the error-to-status mapping, including the errors
// that are hard to provoke through the router, such as a full hash queue.
func TestStatusTable(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("layer: %w", err) }
	tests := []struct {
		err  error
		code int
		msg  string
	}{
		{wrap(errBadRequest), 400, "layer: invalid request body"},
		{fmt.Errorf("%w: is required", users.ErrInvalidName), 400, "invalid user_name: is required"},
		{wrap(users.ErrInvalidPassword), 400, ""},
		{wrap(errTooLarge), 413, ""},
		{errMediaType, 415, ""},
		{errNoRoute, 404, ""},
		{errNoMethod, 405, ""},
		{wrap(users.ErrBadCredentials), 401, "invalid user name or password"},
		{wrap(users.ErrNameTaken), 409, "user name already taken"},
		{&users.ThrottledError{}, 429, ""},
		{wrap(password.ErrBusy), 503, "server busy, retry later"},
		{wrap(users.ErrUnavailable), 503, "service unavailable, retry later"},
		{wrap(context.DeadlineExceeded), 503, ""},
		{wrap(context.Canceled), 499, "client closed request"},
		{fmt.Errorf("%w: %w", password.ErrBusy, context.Canceled), 499, ""},
		{fmt.Errorf("%w: %w", users.ErrUnavailable, context.Canceled), 499, ""},
		{errors.New("boom: connection string with password"), 500, "internal error"},
		{wrap(password.ErrMalformedHash), 500, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			code, msg := status(tt.err)
			assert.Equal(t, tt.code, code)
			if tt.msg != "" {
				assert.Equal(t, tt.msg, msg)
			}
			if code >= http.StatusInternalServerError {
				assert.NotContains(t, msg, "password", "server errors never leak details")
			}
		})
	}
}
