// Package client is the Go SDK for GRPCChatter.
//
// A Client talks to the auth service over HTTP (accounts and user tokens)
// and to the chat service over gRPC (rooms and the live Chat stream):
//
//	c, err := client.New(client.WithAuthURL("http://127.0.0.1:8080"), client.WithChatAddress("127.0.0.1:5050"))
//	defer c.Close()
//	_, err = c.LogIn(ctx, "alice", password)
//	room, err := c.JoinChatRoom(ctx, code, roomPassword)
//	id, err := c.Send(ctx, "hello")
//	ev, err := c.Receive(ctx) // *client.Message, *client.Presence, *client.Gap, ...
//
// # Sessions and reconnection
//
// JoinChatRoom opens the room's stream and returns once the service has
// accepted it. From then on the Client keeps the stream open by itself: when
// it breaks (the service restarts or shuts down, the stream fell too far
// behind, the network failed) it reopens it with exponential backoff and
// jitter, asking the service to resume after the last message Receive has
// returned. Within the service's history window nothing is lost and nothing
// is delivered twice; when the service cannot replay (it restarted, or the
// client was away too long) Receive returns a *Gap before the live events.
// Connection changes are reported as *Connection events so that a user
// interface can show them.
//
// An expired room token is renewed by joining again with the room password,
// which the Client keeps in memory only for that purpose. An expired user
// token ends the session with ErrUnauthenticated; a deleted room ends it
// with a *RoomDeleted event followed by ErrRoomDeleted.
//
// # Sending while reconnecting
//
// Send waits, within its context, until the stream is open again rather than
// failing with a "reconnecting" error, so callers that pipe lines into a room
// need no retry loop. Give Send a context with a deadline to bound the wait.
// Send returns once the message is handed to the stream; it is confirmed
// when Receive returns a *Message with the same ClientMessageID. Messages
// written to a stream that broke before they came back are sent again on the
// next stream unless the replay shows the service recorded them, and a
// repeat that slips through anyway (the service recorded the first copy
// late) is dropped on receipt by every Client, so that within the history
// window a message is neither lost nor shown twice.
//
// The Client applies backpressure end to end: while Receive is not called
// and its buffer (WithEventBuffer) is full, the Client stops reading the
// stream, the service drops it as too slow, and after the reconnection Send
// waits until the replay has been handed to Receive. A Client that sends
// must also receive.
//
// # Concurrency
//
// All methods are safe for concurrent use. Send and Receive are meant to be
// called from different goroutines. Disconnect and Close may be called at any
// time: they return promptly, pending Receive and Send calls return
// ErrDisconnected, and later ones ErrNotJoined (after Disconnect) or ErrClosed
// (after Close). Methods called out of order fail with ErrNotLoggedIn or
// ErrNotJoined rather than panic.
//
// # Errors
//
// Errors returned by the services match the package's sentinels with
// errors.Is (ErrUnauthenticated, ErrNotFound, ErrAlreadyTaken, ...) and carry
// the service's message; errors.As with *Error gives the details, including
// the retry-after delay of ErrRateLimited when the service sent one.
package client
