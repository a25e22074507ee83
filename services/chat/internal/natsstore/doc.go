// Package natsstore implements the chat service's shared seams on NATS
// JetStream, so that several instances serve the same rooms: the presence
// table (Presence, an engine.Presence per instance), the limiter of wrong
// room passwords (Limiter, an api.Limiter whose budget all instances
// share), the rooms' registry and message log, and the feed that tells
// each instance what the others wrote.
//
// State lives in key-value buckets, updated by compare-and-set on a key's
// revision so that concurrent instances never lose each other's writes;
// what only needs to reach the instances connected now (presence events)
// goes over core NATS subjects. Every error from NATS satisfies
// errors.Is(err, rooms.ErrUnavailable), which the transports map to
// "unavailable, try again".
package natsstore
