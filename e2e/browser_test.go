package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The browser tests: the page chat serves, in headless Chromium, against
// the real binaries, with an SDK user alongside.

func pagePassword(name string) string { return "pw-" + name + "-long-enough" }

// browserRoom is a stack with a room that alice created on her page.
type browserRoom struct {
	s     *stack
	br    *browser
	alice *page
	code  string
}

const roomPassword = "room-secret"

func newBrowserRoom(t *testing.T, roomName string) *browserRoom {
	t.Helper()
	return newBrowserRoomWith(t, roomName, stackOptions{})
}

func newBrowserRoomWith(t *testing.T, roomName string, opts stackOptions) *browserRoom {
	t.Helper()
	needBrowser(t) // before starting anything
	s := newStack(t, opts)
	s.waitWeb(t)
	br := newBrowser(t)
	alice := br.open(t, "alice", s.webURL)
	alice.register("alice", pagePassword("alice"))
	code := alice.createRoom(roomName, roomPassword)
	return &browserRoom{s: s, br: br, alice: alice, code: code}
}

// joinPage opens a page for a new user who joins the room.
func (r *browserRoom) joinPage(t *testing.T, name string) *page {
	t.Helper()
	p := r.br.open(t, name, r.s.webURL)
	p.register(name, pagePassword(name))
	p.join(strings.ToLower(r.code), roomPassword)
	return p
}

// joinSDK has a new SDK user join the room, with a collector of its events.
func (r *browserRoom) joinSDK(t *testing.T, name string) (*client.Client, *collector) {
	t.Helper()
	c := newUser(t, r.s, name)
	_, err := c.JoinChatRoom(testCtx(t, 10*time.Second), r.code, roomPassword)
	require.NoError(t, err)
	return c, collect(t, c)
}

func sdkBodies(ms []*client.Message) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Body)
	}
	return out
}

func count[T comparable](xs []T, x T) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// TestBrowserChat: two browser users and an SDK user in one room see the
// same messages in the same order, and each other online.
func TestBrowserChat(t *testing.T) {
	needBrowser(t)
	s := newStack(t, stackOptions{})
	s.waitWeb(t)
	br := newBrowser(t)
	alice := br.open(t, "alice", s.webURL)

	// Refusals are shown plainly.
	alice.logIn("nobody", "not-a-password")
	alice.waitJS("the login refused", `document.getElementById('alert').textContent !== ''`)
	assert.Contains(t, strings.ToLower(alice.alert()), "invalid user name or password")
	alice.click("tab-register")
	alice.typeInto("register-name", "alice")
	alice.typeInto("register-password", pagePassword("alice"))
	alice.typeInto("register-confirm", "something-else")
	alice.click("register-submit")
	alice.waitJS("the mismatch reported", `document.getElementById('alert').textContent.includes('do not match')`)

	alice.register("alice", pagePassword("alice"))
	code := alice.createRoom("general", roomPassword)
	r := &browserRoom{s: s, br: br, alice: alice, code: code}
	carol, col := r.joinSDK(t, "carol")
	alice.waitOnline("alice", "carol")
	bob := r.joinPage(t, "bob")
	alice.waitOnline("alice", "bob", "carol")
	bob.waitOnline("alice", "bob", "carol")
	assert.Contains(t, alice.systemLines(), "carol joined")
	assert.Contains(t, alice.systemLines(), "bob joined")
	col.waitUntil(t, 10*time.Second, "bob's arrival", func(evs []client.Event) bool {
		return slices.ContainsFunc(eventsOf[*client.Presence](evs), func(p *client.Presence) bool { return p.User == "bob" && p.Kind == client.Joined })
	})

	ctx := testCtx(t, 60*time.Second)
	const rounds = 3
	for i := range rounds {
		alice.send(fmt.Sprintf("alice %d", i))
		_, err := carol.Send(ctx, fmt.Sprintf("carol %d", i))
		require.NoError(t, err)
		bob.send(fmt.Sprintf("bob %d\nsecond line", i))
	}
	// Markup in a message is text, never markup.
	const markup = `<img src=x onerror="document.body.dataset.pwned=1"><b>bold</b>`
	_, err := carol.Send(ctx, markup)
	require.NoError(t, err)
	const total = 3*rounds + 1

	atAlice := alice.waitMessages(total)
	atBob := bob.waitMessages(total)
	col.waitUntil(t, 20*time.Second, "all messages at carol", func(evs []client.Event) bool { return len(messagesOf(evs)) >= total })
	atCarol := col.messages()
	require.Len(t, atAlice, total)
	require.Len(t, atBob, total)
	require.Len(t, atCarol, total)
	assert.Equal(t, sdkBodies(atCarol), bodiesOf(atAlice), "alice sees carol's order")
	assert.Equal(t, sdkBodies(atCarol), bodiesOf(atBob), "bob sees carol's order")
	for i, m := range atCarol {
		assert.Equal(t, fmt.Sprint(m.Sequence), atAlice[i].Seq)
		assert.Equal(t, fmt.Sprint(m.Sequence), atBob[i].Seq)
		assert.Equal(t, m.Sender, atAlice[i].Sender)
		assert.Equal(t, m.Sender == "alice", atAlice[i].Own, "alice's own messages are marked, only they")
		assert.Equal(t, m.Sender == "bob", atBob[i].Own)
	}
	assert.Equal(t, markup, atAlice[total-1].Body)
	assert.Equal(t, "bob 0\nsecond line", atAlice[2].Body, "a multi-line message keeps its lines")
	assert.Zero(t, eval[int](alice, `document.querySelectorAll('#messages img, #messages b').length`), "markup rendered")
	assert.False(t, eval[bool](alice, `'pwned' in document.body.dataset`))

	// Leaving is seen by the others.
	bob.click("leave")
	bob.waitJS("back in the lobby", `document.body.dataset.view === 'lobby'`)
	alice.waitOnline("alice", "carol")
	alice.waitJS("bob's departure", `[...document.querySelectorAll('#messages li.system')].some(li => li.textContent === 'bob left')`)
	alice.assertClean()
	bob.assertClean()
}

// TestBrowserReload: a page reloaded mid-conversation shows the backlog, then
// live messages, each once.
func TestBrowserReload(t *testing.T) {
	r := newBrowserRoom(t, "reload")
	alice := r.alice
	carol, col := r.joinSDK(t, "carol")
	ctx := testCtx(t, 60*time.Second)
	for i := range 3 {
		_, err := carol.Send(ctx, fmt.Sprintf("carol %d", i))
		require.NoError(t, err)
	}
	alice.waitBody("carol 2")
	alice.send("alice 0")
	before := alice.waitMessages(4)

	stored := eval[string](alice, `sessionStorage.getItem('grpcchatter')`)
	assert.Contains(t, stored, r.code, "the room is kept for a reload")
	assert.NotContains(t, stored, roomPassword, "the room password is kept in memory only")
	assert.NotContains(t, stored, pagePassword("alice"), "the user password is kept in memory only")

	alice.do(chromedp.Reload())
	alice.waitJS("the page started again", `document.body.dataset.ready === 'true'`)
	alice.waitConnected()
	after := alice.waitMessages(4)
	assert.Equal(t, before, after, "the backlog shows the conversation as it was")
	assert.Equal(t, 4, eval[int](alice, `document.querySelectorAll('#messages li.message.earlier').length`), "the backlog is marked as earlier")

	_, err := carol.Send(ctx, "carol after reload")
	require.NoError(t, err)
	alice.waitBody("carol after reload")
	alice.send("alice after reload")
	alice.waitBody("alice after reload")
	col.waitUntil(t, 20*time.Second, "alice's message at carol", hasBody("alice after reload"))

	got := alice.messages()
	assert.Equal(t, []string{"carol 0", "carol 1", "carol 2", "alice 0", "carol after reload", "alice after reload"}, bodiesOf(got))
	var seqs []string
	for _, m := range got {
		assert.NotContains(t, seqs, m.Seq, "message %s shown twice", m.Seq)
		seqs = append(seqs, m.Seq)
	}
	assert.Equal(t, sdkBodies(col.messages()), bodiesOf(got))
	alice.assertClean()
}

// TestBrowserRestart: chat restarts under the page, which reconnects,
// resumes, and delivers once what was typed meanwhile. With the history in
// memory the restart starts a new epoch, which the page shows as a gap.
func TestBrowserRestart(t *testing.T) {
	for _, hs := range historyStores {
		t.Run(hs.name, func(t *testing.T) {
			r := newBrowserRoomWith(t, "restart", stackOptions{chatEnv: map[string]string{"HISTORY_STORE": hs.name}})
			alice := r.alice
			carol, col := r.joinSDK(t, "carol")
			ctx := testCtx(t, 90*time.Second)
			_, err := carol.Send(ctx, "before the restart")
			require.NoError(t, err)
			alice.waitBody("before the restart")

			r.s.chat.stop(t)
			alice.waitState("reconnecting")
			alice.send("typed while away")
			alice.waitJS("the message waiting to be sent", `document.querySelectorAll('#outbox li').length === 1`)
			assert.Equal(t, 1, len(alice.messages()), "nothing delivered while chat is down")

			r.s.startChat(t)
			alice.waitState("connected")
			_, err = carol.Send(ctx, "after the restart")
			require.NoError(t, err)
			alice.waitBody("after the restart")
			alice.waitBody("typed while away")
			// One more round trip settles whatever a resend could still bring.
			alice.send("last")
			alice.waitBody("last")
			col.waitUntil(t, 30*time.Second, "alice's last message at carol", hasBody("last"))
			alice.waitJS("the outbox emptied", `document.querySelectorAll('#outbox li').length === 0`)

			atAlice := bodiesOf(alice.messages())
			atCarol := sdkBodies(col.messages())
			assert.Equal(t, 1, count(atAlice, "typed while away"), "at alice: %v", atAlice)
			assert.Equal(t, 1, count(atCarol, "typed while away"), "at carol: %v", atCarol)
			assert.Equal(t, atCarol, atAlice)
			lines := alice.systemLines()
			assert.Contains(t, lines, "Reconnected.")
			gaps := slices.ContainsFunc(lines, func(l string) bool { return strings.Contains(l, "may be missing") })
			assert.Equal(t, !hs.durable, gaps, "a gap shown only when the history was lost: %v", lines)
			alice.assertClean()
		})
	}
}

// TestBrowserDelete: only the owner may delete the room, and the other page
// says it was deleted.
func TestBrowserDelete(t *testing.T) {
	r := newBrowserRoom(t, "doomed")
	alice := r.alice
	bob := r.joinPage(t, "bob")
	alice.waitOnline("alice", "bob")

	bob.click("delete-room")
	bob.click("delete-confirm")
	bob.waitJS("the refusal shown", `document.getElementById('alert').textContent !== ''`)
	assert.Contains(t, bob.alert(), "owner")
	assert.False(t, eval[bool](bob, `!document.getElementById('deleted-banner').hidden`))
	bob.waitConnected()

	alice.click("delete-room")
	alice.click("delete-confirm")
	bob.waitJS("the deletion shown", `!document.getElementById('deleted-banner').hidden`)
	assert.Contains(t, eval[string](bob, `document.getElementById('deleted-banner').textContent`), "This room was deleted")
	assert.True(t, eval[bool](bob, `document.getElementById('message-input').disabled`))
	alice.waitJS("the deletion shown to the owner", `!document.getElementById('deleted-banner').hidden`)

	// The room is gone: joining it again says so.
	bob.click("back-to-lobby")
	bob.join2(r.code)
	bob.waitJS("the join refused", `document.getElementById('alert').textContent.includes('No room')`)
	alice.assertClean()
	bob.assertClean()
}

// join2 submits the join form without waiting for the room.
func (p *page) join2(code string) {
	p.t.Helper()
	p.typeInto("join-code", code)
	p.typeInto("join-password", roomPassword)
	p.click("join-submit")
}

// TestBrowserScreenshots checks the room's layout at desktop and phone
// widths, and writes PNGs for the docs when GRPCCHATTER_SCREENSHOTS_DIR is
// set.
func TestBrowserScreenshots(t *testing.T) {
	r := newBrowserRoom(t, "Release planning")
	alice := r.alice
	bob := r.joinPage(t, "bob")
	alice.waitOnline("alice", "bob")
	alice.send("Morning! Are we still on track to ship 2.4 on Thursday?")
	bob.waitBody("Morning! Are we still on track to ship 2.4 on Thursday?")
	bob.send("Yes. The WebSocket transport landed last night, so the browser client makes it in.")
	alice.waitBody("Yes. The WebSocket transport landed last night, so the browser client makes it in.")
	bob.send("The end-to-end suite is green on both SQLite and PostgreSQL.")
	alice.waitBody("The end-to-end suite is green on both SQLite and PostgreSQL.")
	alice.send("Great. I'll update the changelog and tag the release after lunch.")
	bob.waitBody("Great. I'll update the changelog and tag the release after lunch.")
	bob.send("Sounds good. I'll write the announcement.")
	alice.waitMessages(5)
	alice.do(chromedp.SendKeys(chromedp.ID("message-input"), "Tagging v2.4.0 now"))
	dir := os.Getenv("GRPCCHATTER_SCREENSHOTS_DIR")

	shoot := func(name string, width, height int64, scale float64, mobile bool) {
		t.Helper()
		opts := []chromedp.EmulateViewportOption{chromedp.EmulateScale(scale)}
		if mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		alice.do(chromedp.EmulateViewport(width, height, opts...))
		// The layout follows the width once the page lays out again.
		alice.waitJS("the viewport applied", fmt.Sprintf(`window.innerWidth === %d`, width))
		alice.waitJS("no horizontal scrolling", `document.documentElement.scrollWidth <= window.innerWidth`)
		alice.waitJS("the composer in view", `document.getElementById('composer').getBoundingClientRect().bottom <= window.innerHeight`)
		alice.waitJS("the latest message in view", `(() => {
			const list = document.getElementById('messages');
			const last = [...list.querySelectorAll('li.message')].pop();
			return last && last.getBoundingClientRect().bottom <= list.getBoundingClientRect().bottom + 1;
		})()`)
		img, err := chromedp.Run(alice.ctx, chromedp.CaptureScreenshot())
		require.NoError(t, err)
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		require.NoError(t, err)
		assert.Equal(t, int(float64(width)*scale), cfg.Width)
		assert.Equal(t, int(float64(height)*scale), cfg.Height)
		if dir != "" {
			require.NoError(t, os.WriteFile(filepath.Join(dir, name), img, 0o644))
			t.Logf("wrote %s", filepath.Join(dir, name))
		}
	}

	shoot("room-desktop.png", 1280, 800, 1, false)
	assert.True(t, eval[bool](alice, `document.getElementById('online-panel').open`), "the online list is open on a desktop")
	assert.Equal(t, []string{"alice", "bob"}, alice.onlineUsers())

	// A phone: the page reloads at that width, and the online list starts
	// collapsed.
	alice.do(chromedp.EmulateViewport(375, 740, chromedp.EmulateScale(2), chromedp.EmulateMobile))
	alice.do(chromedp.Reload())
	alice.waitJS("the page started again", `document.body.dataset.ready === 'true'`)
	alice.waitConnected()
	alice.waitMessages(5)
	assert.False(t, eval[bool](alice, `document.getElementById('online-panel').open`), "the online list is collapsed on a phone")
	assert.Equal(t, "2", eval[string](alice, `document.getElementById('online-count').textContent`))
	eval[chromedp.Void](alice, `document.activeElement.blur()`) // no focus ring in the picture
	shoot("room-mobile.png", 375, 740, 2, true)
	alice.assertClean()
	bob.assertClean()
}

// TestBrowserTokens runs with room tokens of 9 s and user tokens of 12 s:
// the page renews its room token in-band, logging in again with the
// password it keeps in memory, without a reconnection; after a reload,
// which forgets the passwords, it asks for the room password once the
// room token it kept expires. (A renewal starts a third of the room
// token's life before it expires, and expiries are whole seconds; it
// costs a login and a join, two password hashes, which took up to 0.8 s
// each beside Chromium on 2 cores: 3 s leave room, where 1 s did not.)
func TestBrowserTokens(t *testing.T) {
	needBrowser(t)
	s := newStack(t, stackOptions{
		authEnv: map[string]string{"TOKEN_DURATION": "12s"},
		chatEnv: map[string]string{"ROOM_TOKEN_DURATION": "9s"},
	})
	s.waitWeb(t)
	br := newBrowser(t)
	alice := br.open(t, "alice", s.webURL)
	alice.register("alice", pagePassword("alice"))
	code := alice.createRoom("short passes", roomPassword)
	r := &browserRoom{s: s, br: br, alice: alice, code: code}
	carol, col := r.joinSDK(t, "carol")
	alice.waitOnline("alice", "carol")

	// Each renewal stores the new room token: count them from there.
	alice.do(chromedp.Evaluate[chromedp.Void](`window.seenTokens = new Set();
		window.seenUserTokens = new Set();
		window.tokenWatch = setInterval(() => {
			const s = JSON.parse(sessionStorage.getItem('grpcchatter'));
			if (s.room) window.seenTokens.add(s.room.token);
			window.seenUserTokens.add(s.userToken);
		}, 100)`))
	alice.waitJSFor(60*time.Second, "the room token renewed 4 times", `window.seenTokens.size >= 5`)
	assert.GreaterOrEqual(t, eval[int](alice, `window.seenUserTokens.size`), 2, "the page logged in again for a new user token")

	ctx := testCtx(t, 30*time.Second)
	_, err := carol.Send(ctx, "still there?")
	require.NoError(t, err)
	alice.waitBody("still there?")
	alice.send("yes")
	col.waitUntil(t, 10*time.Second, "alice's answer", hasBody("yes"))
	assert.NotContains(t, alice.systemLines(), "Reconnected.", "the page never reconnected")
	for _, p := range eventsOf[*client.Presence](col.snapshot()) {
		assert.NotEqual(t, "alice", p.User, "carol saw alice %s at %s", p.Kind, p.At)
	}

	// A reload forgets the passwords: once the kept room token expires,
	// the page asks for the room password, with the room's code filled in.
	// (Reloaded while the user token has a while to go, which the page
	// keeps renewing: else it rightly asks to log in again first.)
	alice.waitJS("a fresh user token", `Date.parse(JSON.parse(sessionStorage.getItem('grpcchatter')).userTokenExpiresAt) - Date.now() > 8500`)
	alice.do(chromedp.Reload())
	alice.waitJS("the page started again", `document.body.dataset.ready === 'true'`)
	alice.waitJS("asked for the room password", `document.body.dataset.view === 'lobby' &&
		document.getElementById('alert').textContent.includes('Enter the room password')`)
	assert.Equal(t, code, eval[string](alice, `document.getElementById('join-code').value`))
	alice.assertClean()
}

// TestBrowserClientRefusedSend drives chatter.js itself in the page: a
// message queued before the stream told its body limit is refused by the
// service, which ends the stream (4003); the client reports that message
// as failed, reconnects, and delivers the next one once.
func TestBrowserClientRefusedSend(t *testing.T) {
	r := newBrowserRoom(t, "limits")
	alice := r.alice
	_, col := r.joinSDK(t, "carol")
	script := fmt.Sprintf(`(async () => {
		const { ChatClient, RoomConnection } = await import('/chatter.js');
		const s = JSON.parse(sessionStorage.getItem('grpcchatter'));
		const room = await new ChatClient().joinRoom(s.userToken, %s, %s);
		const conn = new RoomConnection({ token: room.token, tokenExpiresAt: room.expiresAt, backlog: 0,
			backoff: { initial: 50, max: 200 } });
		window.events = [];
		for (const type of ['state', 'opened', 'message', 'sendfailed', 'gap', 'deleted', 'error']) {
			conn.addEventListener(type, (e) => window.events.push({ type, detail: e.detail }));
		}
		// Before the first stream opens, the limit is unknown: send takes both.
		window.tooLong = conn.send('x'.repeat(5000));
		window.fine = conn.send('fine');
		conn.connect();
		window.conn = conn;
	})()`, jsString(r.code), jsString(roomPassword))
	ctx, cancel := context.WithTimeout(alice.ctx, 20*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Evaluate[chromedp.Void](script, chromedp.EvalAwaitPromise))
	require.NoError(t, err)

	alice.waitJS("the refused message reported", `window.events.some(e => e.type === 'sendfailed' && e.detail.clientMessageId === window.tooLong)`)
	alice.waitJS("the next message delivered", `window.events.some(e => e.type === 'message' && e.detail.clientMessageId === window.fine)`)
	col.waitUntil(t, 10*time.Second, "the message at carol", hasBody("fine"))
	failed := eval[string](alice, `JSON.stringify(window.events.find(e => e.type === 'sendfailed').detail)`)
	assert.Contains(t, failed, "body", "the service's reason names the body: %s", failed)
	assert.Equal(t, 1, eval[int](alice, `window.events.filter(e => e.type === 'message' && e.detail.body === 'fine').length`))
	assert.Equal(t, 0, eval[int](alice, `window.events.filter(e => e.type === 'message' && e.detail.body.startsWith('xxx')).length`))
	assert.Equal(t, 0, eval[int](alice, `window.conn.pending`), "nothing left unconfirmed")
	assert.Equal(t, 4096, eval[int](alice, `window.conn.maxMessageBytes`))
	assert.Equal(t, "connected", eval[string](alice, `window.conn.state`))
	// A body over the now known limit is refused at once, never sent.
	assert.True(t, eval[bool](alice, `(() => { try { window.conn.send('x'.repeat(4097)); return false } catch { return true } })()`))
	for _, m := range col.messages() {
		assert.NotEqual(t, 5000, len(m.Body), "the refused message reached carol")
	}
	alice.do(chromedp.Evaluate[chromedp.Void](`window.conn.close()`))
}
