// Package chat is the GRPCChatter chat service: rooms, room tokens, presence
// and streaming over gRPC.
package chat
