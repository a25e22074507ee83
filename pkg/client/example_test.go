package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// A whole session against running services: log in, create and join a
// room, send a message and read the room until the session ends.
func Example() {
	ctx := context.Background()
	c, err := client.New(
		client.WithAuthURL("http://127.0.0.1:8080"),
		client.WithChatAddress("127.0.0.1:5050"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	if _, err := c.CreateAccount(ctx, "alice", "correct horse"); err != nil && !errors.Is(err, client.ErrAlreadyTaken) {
		log.Fatal(err)
	}
	if _, err := c.LogIn(ctx, "alice", "correct horse"); err != nil {
		log.Fatal(err)
	}
	code, err := c.CreateChatRoom(ctx, "general", "room password")
	if err != nil {
		log.Fatal(err)
	}
	room, err := c.JoinChatRoom(ctx, code, "room password")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("joined %s (%s) with %d online\n", room.Name, room.ShortCode, len(room.Users))

	if _, err := c.Send(ctx, "hello, room"); err != nil {
		log.Fatal(err)
	}
	for {
		ev, err := c.Receive(ctx)
		if err != nil {
			log.Println("session ended:", err)
			return
		}
		switch ev := ev.(type) {
		case *client.Message:
			fmt.Printf("%s: %s\n", ev.Sender, ev.Body)
		case *client.Presence:
			fmt.Printf("* %s %s\n", ev.User, ev.Kind)
		case *client.Gap:
			fmt.Println("* some messages may have been missed")
		case *client.Connection:
			fmt.Println("* connection:", ev.State)
		case *client.RoomDeleted:
			fmt.Println("* the room was deleted")
		}
	}
}

// Send and Receive run in different goroutines; Disconnect stops both.
func ExampleClient_Receive() {
	c, err := client.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// ... LogIn and JoinChatRoom ...

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { // prints the room until Disconnect
		defer close(done)
		for {
			ev, err := c.Receive(ctx)
			if err != nil {
				return // client.ErrDisconnected after Disconnect
			}
			if m, ok := ev.(*client.Message); ok {
				fmt.Printf("%s: %s\n", m.Sender, m.Body)
			}
		}
	}()
	sendCtx, stop := context.WithTimeout(ctx, 10*time.Second) // bounds a wait for reconnection
	_, _ = c.Send(sendCtx, "hi")
	stop()
	_ = c.Disconnect(ctx)
	<-done
}

// Rate-limited errors tell how long to wait.
func ExampleRetryAfter() {
	c, err := client.New()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = c.LogIn(context.Background(), "alice", "guess")
	if d, ok := client.RetryAfter(err); ok {
		fmt.Println("too many attempts; retry in", d)
	}
}
