package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// printer writes events as lines: messages on out, the rest on err as
// "* ..." lines; or everything on out as JSON objects. Messages sent before
// the join (the backlog) are marked "[earlier]", or "earlier":true.
type printer struct {
	out, err io.Writer
	json     bool
	dim      bool // out is a terminal: earlier messages are shown faint
}

// earlierMark prefixes an earlier message in text output.
const earlierMark = "[earlier] "

func (p printer) emit(v any) {
	b, _ := json.Marshal(v) // the event types marshal without error
	fmt.Fprintf(p.out, "%s\n", b)
}

func (p printer) joined(r *client.Room, user string) {
	if p.json {
		p.emit(joinedJSON{Type: "joined", ShortCode: r.ShortCode, Name: r.Name, UserName: user, Users: usersJSON(r.Users), Backlog: r.Backlog})
		return
	}
	fmt.Fprintf(p.err, "* joined %s (%s) as %s; %d online%s\n", r.Name, r.ShortCode, user, len(r.Users), earlierNote(r.Backlog))
}

func (p printer) event(ev client.Event) {
	if p.json {
		p.emit(eventJSON(ev))
		return
	}
	switch ev := ev.(type) {
	case *client.Message:
		switch {
		case ev.Earlier && p.dim:
			fmt.Fprintf(p.out, "\x1b[2m%s%s: %s\x1b[0m\n", earlierMark, ev.Sender, ev.Body)
		case ev.Earlier:
			fmt.Fprintf(p.out, "%s%s: %s\n", earlierMark, ev.Sender, ev.Body)
		default:
			fmt.Fprintf(p.out, "%s: %s\n", ev.Sender, ev.Body)
		}
	default:
		fmt.Fprintf(p.err, "* %s\n", describeEvent(ev))
	}
}

// The objects `join --json` prints, one per line; README.md documents
// them. Every object of a type has all of its type's fields.
type (
	joinedJSON struct {
		Type      string     `json:"type"`
		ShortCode string     `json:"short_code"`
		Name      string     `json:"name"`
		UserName  string     `json:"user_name"`
		Users     []userJSON `json:"users"`
		Backlog   int        `json:"backlog"`
	}
	messageJSON struct {
		Type            string    `json:"type"`
		Sequence        uint64    `json:"sequence"`
		Epoch           string    `json:"epoch"`
		Sender          string    `json:"sender"`
		Body            string    `json:"body"`
		SentAt          time.Time `json:"sent_at"`
		ClientMessageID string    `json:"client_message_id"`
		Earlier         bool      `json:"earlier"`
	}
	presenceJSON struct {
		Type     string    `json:"type"`
		Kind     string    `json:"kind"`
		UserName string    `json:"user_name"`
		At       time.Time `json:"at"`
	}
	gapJSON struct {
		Type          string   `json:"type"`
		PreviousEpoch string   `json:"previous_epoch"`
		AfterSequence uint64   `json:"after_sequence"`
		Epoch         string   `json:"epoch"`
		HeadSequence  uint64   `json:"head_sequence"`
		Unconfirmed   []string `json:"unconfirmed"`
		// Dropped and DroppedMessages count the events (and of them
		// messages) dropped unread because chatter fell behind.
		Dropped         int `json:"dropped"`
		DroppedMessages int `json:"dropped_messages"`
	}
	connectionJSON struct {
		Type  string `json:"type"`
		State string `json:"state"`
		// Reconnecting: why, in a word (reason) and in words (message),
		// the error itself, the attempt and the wait before the next.
		Reason    string `json:"reason"`
		Message   string `json:"message"`
		Error     string `json:"error"`
		Attempt   int    `json:"attempt"`
		RetryInMS int64  `json:"retry_in_ms"`
		// Connected: who is online now.
		Users []userJSON `json:"users"`
	}
	roomDeletedEventJSON struct {
		Type string    `json:"type"`
		At   time.Time `json:"at"`
	}
	sendFailedJSON struct {
		Type            string `json:"type"`
		ClientMessageID string `json:"client_message_id"`
		Body            string `json:"body"`
		Error           string `json:"error"`
	}
)

func eventJSON(ev client.Event) any {
	switch ev := ev.(type) {
	case *client.Message:
		return messageJSON{Type: "message", Sequence: ev.Sequence, Epoch: ev.Epoch, Sender: ev.Sender, Body: ev.Body,
			SentAt: ev.SentAt, ClientMessageID: ev.ClientMessageID, Earlier: ev.Earlier}
	case *client.Presence:
		return presenceJSON{Type: "presence", Kind: ev.Kind.String(), UserName: ev.User, At: ev.At}
	case *client.Gap:
		return gapJSON{Type: "gap", PreviousEpoch: ev.PreviousEpoch, AfterSequence: ev.AfterSequence, Epoch: ev.Epoch,
			HeadSequence: ev.HeadSequence, Unconfirmed: append([]string{}, ev.Unconfirmed...),
			Dropped: ev.Dropped, DroppedMessages: ev.DroppedMessages}
	case *client.Connection:
		v := connectionJSON{Type: "connection", State: ev.State.String(), Users: usersJSON(ev.Users)}
		if ev.State == client.Reconnecting {
			v.Reason, v.Message = breakReason(ev.Err)
			if ev.Err != nil {
				v.Error = ev.Err.Error()
			}
			v.Attempt = ev.Attempt
			v.RetryInMS = ev.Retry.Milliseconds()
		}
		return v
	case *client.RoomDeleted:
		return roomDeletedEventJSON{Type: "room_deleted", At: ev.At}
	case *client.SendFailed:
		msg := ""
		if ev.Err != nil {
			msg = ev.Err.Error()
		}
		return sendFailedJSON{Type: "send_failed", ClientMessageID: ev.ClientMessageID, Body: ev.Body, Error: msg}
	}
	return struct {
		Type string `json:"type"`
	}{"unknown"}
}

// earlierNote tells how many earlier messages follow the join, if any.
func earlierNote(n int) string {
	switch n {
	case 0:
		return ""
	case 1:
		return "; 1 earlier message follows"
	}
	return fmt.Sprintf("; %d earlier messages follow", n)
}

// describeEvent is an event other than a message in words.
func describeEvent(ev client.Event) string {
	switch ev := ev.(type) {
	case *client.Presence:
		return fmt.Sprintf("%s %s", ev.User, ev.Kind)
	case *client.Gap:
		if ev.Dropped > 0 && !ev.ServiceGap {
			return fmt.Sprintf("fell behind: %d events not shown, %d of them messages", ev.Dropped, ev.DroppedMessages)
		}
		if ev.PreviousEpoch != ev.Epoch {
			return "the chat service restarted: messages sent while reconnecting may be missing"
		}
		if n := len(ev.Unconfirmed); n > 0 {
			return fmt.Sprintf("some messages may have been missed while reconnecting; %d of yours were sent again and may not be echoed", n)
		}
		return "some messages may have been missed while reconnecting"
	case *client.Connection:
		if ev.State == client.Reconnecting {
			return reconnecting(ev)
		}
		return "reconnected"
	case *client.RoomDeleted:
		return "the room was deleted"
	case *client.SendFailed:
		return fmt.Sprintf("message not sent (%v): %.40q", ev.Err, ev.Body)
	case *client.Message:
		return fmt.Sprintf("%s: %s", ev.Sender, ev.Body)
	}
	return "unknown event"
}

// reconnecting says why the room's stream broke and when the next attempt
// is, e.g. "chat service unreachable, retrying in 5s".
func reconnecting(ev *client.Connection) string {
	_, why := breakReason(ev.Err)
	return fmt.Sprintf("%s, retrying in %s", why, roundDelay(ev.Retry))
}

// breakReason names why a stream broke, from the kind of the SDK's error:
// a stable word for scripts and a phrase for people. The error's own text
// (a transport's, often) is for the JSON output only.
func breakReason(err error) (reason, phrase string) {
	switch {
	case err == nil:
		return "unknown", "connection lost"
	case errors.Is(err, client.ErrSlowConsumer):
		return "slow_consumer", "fell behind reading the room"
	case errors.Is(err, client.ErrStreamLimit):
		return "stream_limit", "too many of your connections are open in this room"
	case errors.Is(err, client.ErrRoomFull):
		return "room_full", "the room is full"
	case errors.Is(err, client.ErrRateLimited):
		return "rate_limited", "the chat service asked to slow down"
	case errors.Is(err, client.ErrUnauthenticated):
		return "unauthenticated", "the room token was refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout", "the chat service did not answer in time"
	case errors.Is(err, client.ErrUnavailable):
		return "unavailable", "chat service unreachable"
	case errors.Is(err, client.ErrServer):
		return "server_error", "the chat service failed"
	}
	return "unknown", "connection lost"
}

// roundDelay rounds a retry delay to what a person reads: tenths of a
// second below 10 s, whole seconds above.
func roundDelay(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
