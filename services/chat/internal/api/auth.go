package api

import (
	"context"
	"strings"

	"google.golang.org/grpc/metadata"

	"github.com/grpcchatter/grpcchatter/internal/token"
)

// bearer returns the token from `authorization: Bearer <jwt>` or `token: <jwt>`.
func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	for _, v := range md.Get("authorization") {
		if scheme, raw, ok := strings.Cut(v, " "); ok && strings.EqualFold(scheme, "bearer") && strings.TrimSpace(raw) != "" {
			return strings.TrimSpace(raw), nil
		}
	}
	for _, v := range md.Get("token") {
		if v = strings.TrimSpace(v); v != "" {
			return v, nil
		}
	}
	return "", errNoToken
}

// userFrom verifies the caller's user token and records its name for the
// access log.
func (s *Server) userFrom(ctx context.Context) (token.User, error) {
	raw, err := bearer(ctx)
	if err != nil {
		return token.User{}, err
	}
	u, err := s.cfg.Signer.VerifyUser(raw)
	if err != nil {
		return token.User{}, err
	}
	noteUser(ctx, u.Name)
	return u, nil
}

// roomFrom verifies the caller's room token and records its name.
func (s *Server) roomFrom(ctx context.Context) (token.Room, error) {
	raw, err := bearer(ctx)
	if err != nil {
		return token.Room{}, err
	}
	r, err := s.cfg.Signer.VerifyRoom(raw)
	if err != nil {
		return token.Room{}, err
	}
	noteUser(ctx, r.UserName)
	return r, nil
}
