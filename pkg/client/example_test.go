package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// The examples run against in-process stand-ins for the services
// (startFakeServices); a real program passes the services' addresses
// instead:
//
//	client.New(client.WithAuthURL("http://127.0.0.1:8080"), client.WithChatAddress("127.0.0.1:5050"))

// A whole session: register, log in, create and join a room, send a
// message and read the room until it comes back.
func Example() {
	services, err := startFakeServices()
	if err != nil {
		log.Fatal(err)
	}
	defer services.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	c, err := client.New(services.options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CreateAccount(ctx, "alice", "correct horse battery staple"); err != nil && !errors.Is(err, client.ErrAlreadyTaken) {
		log.Fatal(err)
	}
	if _, err := c.LogIn(ctx, "alice", "correct horse battery staple"); err != nil {
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
	fmt.Printf("joined %s with %d online\n", room.Name, len(room.Users))

	id, err := c.Send(ctx, "hello, room")
	if err != nil {
		log.Fatal(err)
	}
	for {
		ev, err := c.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if m, ok := ev.(*client.Message); ok {
			fmt.Printf("%s: %s\n", m.Sender, m.Body)
			if m.ClientMessageID == id {
				break // our own message came back: the room recorded it
			}
		}
	}
	if err := c.Disconnect(ctx); err != nil {
		log.Fatal(err)
	}
	// Output:
	// joined general with 1 online
	// alice: hello, room
}

// Receive returns events of several kinds; a type switch tells them apart.
// Here bob reads the room in its own goroutine while alice sends, until
// bob disconnects.
func ExampleClient_Receive() {
	services, err := startFakeServices()
	if err != nil {
		log.Fatal(err)
	}
	defer services.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, bob := exampleUser(ctx, services, "alice"), exampleUser(ctx, services, "bob")
	defer alice.Close()
	defer bob.Close()
	code, err := alice.CreateChatRoom(ctx, "general", "room password")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := bob.JoinChatRoom(ctx, code, "room password"); err != nil {
		log.Fatal(err)
	}

	done := make(chan struct{})
	go func() { // prints the room until bob disconnects
		defer close(done)
		for {
			ev, err := bob.Receive(ctx)
			if err != nil { // ErrDisconnected if another goroutine disconnected
				fmt.Println("* session ended:", err)
				return
			}
			switch ev := ev.(type) {
			case *client.Message:
				fmt.Printf("%s: %s\n", ev.Sender, ev.Body)
				if ev.Body == "bye" {
					if err := bob.Disconnect(ctx); err == nil {
						fmt.Println("* left")
					}
					return
				}
			case *client.Presence:
				fmt.Printf("* %s %s\n", ev.User, ev.Kind)
			case *client.Connection:
				fmt.Println("* connection", ev.State)
			case *client.Gap:
				fmt.Println("* some messages may have been missed")
			case *client.SendFailed:
				fmt.Println("* not sent:", ev.Err)
			case *client.RoomDeleted:
				fmt.Println("* the room was deleted")
			}
		}
	}()
	if _, err := alice.JoinChatRoom(ctx, code, "room password"); err != nil {
		log.Fatal(err)
	}
	for _, body := range []string{"hi bob", "bye"} {
		if _, err := alice.Send(ctx, body); err != nil {
			log.Fatal(err)
		}
	}
	<-done
	// Output:
	// * alice joined
	// alice: hi bob
	// alice: bye
	// * left
}

// One Client holds several rooms, each a *client.Room with its own events:
// here bob is in two rooms at once, reads each on its own handle, leaves
// one and stays in the other.
func ExampleClient_JoinRoom() {
	services, err := startFakeServices()
	if err != nil {
		log.Fatal(err)
	}
	defer services.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, bob := exampleUser(ctx, services, "alice"), exampleUser(ctx, services, "bob")
	defer alice.Close()
	defer bob.Close()

	var aliceIn, bobIn []*client.Room
	for _, name := range []string{"general", "random"} {
		code, err := alice.CreateChatRoom(ctx, name, "room password")
		if err != nil {
			log.Fatal(err)
		}
		a, err := alice.JoinRoom(ctx, code, "room password")
		if err != nil {
			log.Fatal(err)
		}
		b, err := bob.JoinRoom(ctx, code, "room password")
		if err != nil {
			log.Fatal(err)
		}
		aliceIn, bobIn = append(aliceIn, a), append(bobIn, b)
	}
	for i, body := range []string{"hello, general", "hello, random"} {
		if _, err := aliceIn[i].Send(ctx, body); err != nil {
			log.Fatal(err)
		}
	}
	// Each room's messages come on its own handle. An application reads
	// every room it is in, e.g. a goroutine per room.
	for _, room := range bobIn {
		fmt.Printf("%s: %s\n", room.Name, nextMessage(ctx, room))
	}

	if err := bobIn[1].Leave(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := aliceIn[0].Send(ctx, "still there, bob?"); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %s\n", bobIn[0].Name, nextMessage(ctx, bobIn[0]))
	_, err = bobIn[1].Receive(ctx)
	fmt.Println("random:", err)
	// Output:
	// general: alice: hello, general
	// random: alice: hello, random
	// general: alice: still there, bob?
	// random: client: disconnected
}

// nextMessage returns the room's next message as "sender: body", skipping
// other events.
func nextMessage(ctx context.Context, room *client.Room) string {
	for {
		ev, err := room.Receive(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if m, ok := ev.(*client.Message); ok {
			return m.Sender + ": " + m.Body
		}
	}
}

// Errors match the package's sentinels with errors.Is; errors.As with
// *client.Error gives the service's message and status.
func ExampleError() {
	services, err := startFakeServices()
	if err != nil {
		log.Fatal(err)
	}
	defer services.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice := exampleUser(ctx, services, "alice")
	defer alice.Close()

	_, err = alice.JoinChatRoom(ctx, "NOSUCH", "room password")
	switch {
	case errors.Is(err, client.ErrNotFound):
		fmt.Println("no such room")
	case err != nil:
		log.Fatal(err)
	}
	code, err := alice.CreateChatRoom(ctx, "general", "room password")
	if err != nil {
		log.Fatal(err)
	}
	_, err = alice.JoinChatRoom(ctx, code, "wrong password")
	var e *client.Error
	if errors.Is(err, client.ErrPermissionDenied) && errors.As(err, &e) {
		fmt.Printf("refused (%s): %s\n", e.Code, e.Message)
	}
	_, err = alice.Send(ctx, "hi")
	fmt.Println(errors.Is(err, client.ErrNotJoined))
	// Output:
	// no such room
	// refused (PermissionDenied): wrong room password
	// true
}

// Rate-limited errors tell how long to wait.
func ExampleRetryAfter() {
	services, err := startFakeServices()
	if err != nil {
		log.Fatal(err)
	}
	defer services.Close()
	c, err := client.New(services.options()...)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	// The stand-in auth service throttles the user "throttled".
	_, err = c.LogIn(context.Background(), "throttled", "correct horse battery staple")
	if d, ok := client.RetryAfter(err); ok {
		fmt.Println("too many attempts; retry in", d)
	}
	// Output: too many attempts; retry in 7s
}

// exampleUser registers and logs in a user, exiting on failure.
func exampleUser(ctx context.Context, services *fakeServices, name string) *client.Client {
	c, err := client.New(services.options()...)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.CreateAccount(ctx, name, "password of "+name); err != nil {
		log.Fatal(err)
	}
	if _, err := c.LogIn(ctx, name, "password of "+name); err != nil {
		log.Fatal(err)
	}
	return c
}
