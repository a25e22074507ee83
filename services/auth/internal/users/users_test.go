package users_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

func TestValidateName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abc", true},
		{"Alice_B-1.x", true},
		{strings.Repeat("a", 32), true},
		{"", false},
		{"ab", false},
		{strings.Repeat("a", 33), false},
		{"has space", false},
		{"аlice", false}, // Cyrillic а
		{"alice\x00", false},
		{"ali@ce", false},
		{"ＡＢＣ", false}, // fullwidth
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := users.ValidateName(tt.name)
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, users.ErrInvalidName)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	assert.NoError(t, users.ValidatePassword("12345678"))
	assert.NoError(t, users.ValidatePassword(strings.Repeat("p", 128)))
	assert.NoError(t, users.ValidatePassword("пароль12"), "any characters, no composition rules")
	for _, pw := range []string{"", "1234567", strings.Repeat("p", 129)} {
		assert.ErrorIs(t, users.ValidatePassword(pw), users.ErrInvalidPassword)
	}
}

func TestKeyFoldsCase(t *testing.T) {
	assert.Equal(t, users.Key("alice"), users.Key("ALICE"))
	assert.Equal(t, "bob.smith", users.Key("Bob.Smith"))
}

func TestThrottledErrorIsErrThrottled(t *testing.T) {
	var err error = &users.ThrottledError{RetryAfter: time.Minute}
	assert.ErrorIs(t, err, users.ErrThrottled)
	var te *users.ThrottledError
	assert.True(t, errors.As(err, &te))
	assert.Equal(t, time.Minute, te.RetryAfter)
}
