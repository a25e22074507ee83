// Package auth is the GRPCChatter account service: registration, login and
// user tokens over a small JSON API.
package auth
