// Package client is the Go SDK for GRPCChatter.
//
// A Client talks to the auth service over HTTP (accounts and user tokens)
// and to the chat service over gRPC (rooms and the live Chat stream):
//
//	c, err := client.New(client.WithAuthURL("http://127.0.0.1:8080"), client.WithChatAddress("127.0.0.1:5050"))
//	defer c.Close()
//	_, err = c.LogIn(ctx, "alice", password)
//	room, err := c.JoinRoom(ctx, code, roomPassword)
//	id, err := room.Send(ctx, "hello")
//	ev, err := room.Receive(ctx) // *client.Message, *client.Presence, *client.Gap, ...
//	err = room.Leave(ctx)
//
// The examples run against in-process stand-ins for the services.
//
// # Rooms
//
// One Client, with one login and one connection to the chat service, holds
// any number of rooms at once. JoinRoom returns a *Room for each: its
// Send, Receive, ListUsers and Leave act on that room alone, its events
// come only from its Receive, and each room has a session of its own
// (the stream, its reconnection and resume, its room token and backlog,
// its buffer of unread events). Leaving a room leaves the others open;
// Close leaves them all. An application reads every room it is in, e.g.
// with a goroutine per room that ends when Receive returns an error.
//
// A program that uses one room at a time can use the Client's own
// methods instead: JoinChatRoom joins a room, and Send, Receive,
// ListChatRoomUsers and Disconnect act on it. JoinChatRoom returns the
// same *Room, and rooms joined with JoinRoom stay open beside it.
//
// What follows holds for every room, whichever way it was joined.
//
// # Sessions and reconnection
//
// JoinRoom opens the room's stream and returns once the service has
// accepted it. From then on the Client keeps the stream open by itself: when
// it breaks (the service restarts or shuts down, the stream fell too far
// behind, the network failed) it reopens it with exponential backoff and
// jitter, asking the service to resume after the last message the Client
// received. The backoff starts over once a reopened stream has stayed open
// for Backoff.ResetAfter (10s by default): a stream the service cuts right
// after opening it is retried ever more slowly, not every 100ms. Within the
// service's history window nothing is lost and nothing is delivered twice; when the service cannot replay (it restarted, or the
// client was away too long) Receive returns a *Gap before the live events.
// Connection changes are reported as *Connection events so that a user
// interface can show them.
//
// A session outlives its tokens. While the stream is open the Client renews
// its room token in-band: at two thirds of the token's remaining life it
// joins again with the room password and hands the new token to the
// service on the same stream, which carries on with no reconnection and no
// presence change; nothing shows in Receive. Should that fail (the join
// fails, or the service refuses the token), or should the service not say
// when the token expires (a version before in-band renewal), the Client
// falls back on what the service does at expiry anyway: it ends the stream
// (Unauthenticated), and the Client joins again and resumes the stream as
// after any break. Other calls that need the room token renew it by the
// Client's own view of the expiry, min(30s, a third of its life) early,
// rather than wait for the service to refuse it.
//
// Joining again needs a user token. A Client that logged in with LogIn logs
// in again by itself when its user token is about to expire or the service
// refuses it: it keeps the user name and password, like the room password,
// in memory only (never logged, forgotten on Close) for that purpose. A
// login throttled by the auth service (ErrRateLimited) is tried again after
// the delay it asked for; a refused one (the password changed, the account
// is gone) ends the session with ErrUnauthenticated. WithCredentialsHook
// reports each such login. A Client given its token with UseToken has no
// password: once that token expires, the session ends with
// ErrUnauthenticated. A deleted room ends the session with a *RoomDeleted
// event followed by ErrRoomDeleted.
//
// # Earlier messages
//
// A new session starts with the room's latest messages, so that the caller
// sees the conversation it joins: Receive returns up to 50 of them (see
// WithBacklog) as *Message events with Earlier set, in room order, before
// the live events, which follow without gap or repeat. Room.Backlog tells
// how many there are; they count against the buffer of unread events. A stream reopened after a break never asks for them
// again: it resumes after the last message delivered.
//
// # Sending while reconnecting
//
// Send waits, within its context, until the stream is open again rather than
// failing with a "reconnecting" error, so callers that pipe lines into a room
// need no retry loop. Give Send a context with a deadline to bound the wait.
// Send returns the message's ID once the stream's writer has it; from then
// on the message is the Client's to deliver, whatever Send's context does,
// and an error from Send means the message was not sent. It is confirmed
// when Receive returns a *Message with the same ClientMessageID.
//
// Client message IDs are random and unique, and the service ignores a Send
// that repeats an ID its user used for a message still in the room's
// history, so sending again is always safe: messages written to a stream
// that broke before they came back are sent again on the next stream. After
// a resumed stream the replay tells exactly which came back; after a gap in
// the same epoch it cannot, so they are all sent again and their IDs are
// listed in Gap.Unconfirmed (those the service had recorded will not come
// back). Receive tells messages apart by their epoch and sequence, so within
// the history window none is lost or shown twice.
//
// Send checks a body against the service's size limit, which the stream
// advertises when it opens (see WithMaxMessageBytes), and fails at once with
// ErrInvalidArgument. Should the service refuse a message anyway, it ends
// the stream: the Client reports that message, and only it, as a
// *SendFailed event and sends the others again.
//
// Each attempt to reopen the stream has its own deadline (WithOpenTimeout),
// so a service that accepts connections but does not answer is retried with
// backoff like one that is down.
//
// An error from Send means that the message was not sent, and says why:
// it names the room and matches the cause with errors.Is (a body too long,
// ErrInvalidArgument; the room left, ErrDisconnected; the room deleted,
// ErrRoomDeleted), and when Send's context ended first, the context's
// error together with what broke the stream it was waiting for (e.g.
// ErrUnavailable, or ErrRateLimited while the service throttles the
// reconnection).
//
// # Unread events
//
// Sending never depends on reading. The Client reads each room's stream
// as fast as the service sends, whether or not the application calls
// Receive, so a program that only sends is never slowed down, and the
// service never drops a stream as too slow because the application did
// not read it.
//
// What the application has not read waits in the room's buffer, which
// holds DefaultEventBuffer (256) events unless WithEventBuffer says
// otherwise. When an event arrives with the buffer full, the oldest unread
// event is dropped: an application that falls behind sees the newest
// events, not stale ones. The next Receive then returns a *Gap that
// counts what was dropped since the application last read: Dropped
// events, DroppedMessages of them messages, from the one after
// AfterSequence up to HeadSequence; then the events that were kept, in
// order. A dropped *SendFailed is kept in the Gap's Failed, and a dropped
// gap of the service's folds its Unconfirmed into the Gap's. Nothing
// dropped is delivered again: the stream has moved on, and a later
// reconnection resumes after the last message received, not the last
// read. A program that only sends can ignore the room's events; one that
// shows them reads each room it is in, and sees a Gap only if it falls
// behind by a whole buffer.
//
// # Several chat instances
//
// The chat service may run as several instances that share its rooms: a
// room's messages have one epoch and one sequence on all of them, so a
// stream broken on one resumes on another without loss. Name them all:
//
//	client.WithChatAddress("10.0.0.1:5050", "10.0.0.2:5050", "10.0.0.3:5050")
//
// or give one DNS name with an A or AAAA record for each instance
// (WithChatAddress("chat.example.com:5050")), which gRPC looks up again
// when a connection fails, at most every 30s. The Client keeps one
// connection, to one instance, which carries all its calls and its stream.
// It picks the instance at random among the addresses or records (gRPC's
// pick_first policy with the list shuffled), so that many clients spread
// over the instances; it does not move a working connection, so an instance
// that comes back gets only new clients and those whose instance failed.
//
// When its instance fails the stream breaks, and the Client reopens it after
// its first backoff delay (WithBackoff, 100ms ±20% by default), resuming
// after the last message received, as after any break. gRPC then
// connects to the addresses in the Client's order, starting again from its
// first: an address that refuses the connection is passed over at once, and
// one that neither refuses nor answers is given 250ms before gRPC tries the
// next alongside (Happy Eyeballs) and keeps whichever answers first. On
// loopback, the stream was open again on a second instance 84–126ms after
// the first stopped with the default backoff (13–23ms with a 10ms one), and
// a Client whose first address never answered joined 255ms after starting.
// A Receive caller sees a *Connection event (Reconnecting), another
// (Connected), and the messages it missed, with no *Gap as long as they
// are within the room's history window.
//
// WithDialOptions can replace the policy with grpc.WithDefaultServiceConfig,
// e.g. pick_first without shuffling, which makes the first address the
// preferred instance and the others standbys.
//
// # Concurrency
//
// All methods are safe for concurrent use. Send and Receive are meant to be
// called from different goroutines, and each room's from its own. Leave,
// Disconnect and Close may be called at any time: they return promptly,
// pending Receive and Send calls on the rooms they leave return
// ErrDisconnected, and later ones ErrDisconnected (a Room after Leave),
// ErrNotJoined (the Client's own after Disconnect) or ErrClosed (after
// Close). Methods called out of order fail with ErrNotLoggedIn or
// ErrNotJoined, and those of a Client not made by New with ErrNotCreated,
// rather than panic. Each room's session runs one goroutine for its
// stream, and two more while the stream is open; Leave and Close wait for
// them to end.
//
// # Logging
//
// The Client logs what it does by itself (reconnections, logins, token
// renewals, refused messages) to the *slog.Logger given with WithLogger,
// and nowhere without one. It never logs a password, a token or a message
// body.
//
// # Limits
//
// The chat service gives a reason with every limit it enforces
// (Error.Reason), and the Client acts on it:
//
//   - A stream cut for falling behind (ErrSlowConsumer) is resumed at once,
//     after the first backoff delay, whatever attempts came before.
//   - A reopening refused by a throttle (ErrRateLimited), the user's stream
//     limit (ErrStreamLimit), a full room (ErrRoomFull) or a want of room
//     codes is waited out for the delay the service asks for, if longer
//     than the backoff, capped at MaxRetryAfter and cut short by
//     Leave, Disconnect or Close; then the Client tries again. The *Connection
//     event says why (Err) and for how long (Retry). The Client never
//     retries in a tight loop.
//   - A stream that a newer stream of the same user replaced ends the
//     session with ErrReplaced: reopening it would replace the newer one.
//
// Calls other than the session's reconnection return every refusal to the
// caller, who decides: CreateChatRoom returns ErrRoomLimit when the user
// owns as many rooms as allowed (deleting one helps, waiting does not) and
// ErrRateLimited, with RetryAfter, when the user creates rooms too fast;
// JoinRoom and JoinChatRoom return ErrRateLimited after too many wrong
// passwords, and ErrStreamLimit or ErrRoomFull, with RetryAfter, when the
// room's stream is refused.
//
// # Errors
//
// Errors returned by the services match the package's sentinels with
// errors.Is (ErrUnauthenticated, ErrNotFound, ErrAlreadyTaken, ...) and carry
// the service's message; errors.As with *Error gives the details: the
// chat service's Reason, and the retry-after delay (also RetryAfter(err))
// when the service sent one.
package client
