package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"github.com/stretchr/testify/require"
)

// The browser tests drive Debian's Chromium through the DevTools protocol
// against the page that the chat binary serves.

// chromiumPath is where Debian installs Chromium; GRPCCHATTER_CHROMIUM
// points elsewhere.
func chromiumPath() string {
	if p := os.Getenv("GRPCCHATTER_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// needBrowser skips the test when Chromium is missing, unless
// GRPCCHATTER_REQUIRE_BROWSER=1 makes that a failure.
func needBrowser(t *testing.T) string {
	t.Helper()
	path := chromiumPath()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("GRPCCHATTER_REQUIRE_BROWSER") == "1" {
			t.Fatalf("Chromium is required (GRPCCHATTER_REQUIRE_BROWSER=1) but missing at %s: %v (apt-get install chromium)", path, err)
		}
		t.Skipf("Chromium not found at %s, skipping the browser test (apt-get install chromium; set GRPCCHATTER_REQUIRE_BROWSER=1 to fail instead)", path)
	}
	return path
}

// browser is one headless Chromium; its tabs are the test's users, each
// with its own sessionStorage.
type browser struct {
	ctx context.Context // the browser's first tab; new tabs derive from it
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	needBinaries(t)
	path := needBrowser(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 800),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancelBrowser() // closes the tabs and the browser
		cancelAlloc()   // waits for the process to exit
	})
	// Not a context with a deadline: the first action's context is the
	// browser process's.
	require.NoError(t, chromedp.Do(bctx), "starting Chromium")
	return &browser{ctx: bctx}
}

// page is one tab of the browser: one user of the chat.
type page struct {
	t    *testing.T
	name string
	ctx  context.Context

	mu      sync.Mutex
	console []chromedp.ConsoleMessage
}

// open opens the page at url in a new tab, and keeps what the page writes
// to the console, which a failed test logs.
func (br *browser) open(t *testing.T, name, url string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(br.ctx)
	p := &page{t: t, name: name, ctx: ctx}
	// Console opens the tab, with the tab's own context.
	messages := chromedp.Console(ctx)
	done := make(chan struct{})
	// The reader lives as long as the tab, which Cleanup closes.
	go func() {
		defer close(done)
		for m, err := range messages {
			if err != nil {
				return
			}
			p.mu.Lock()
			p.console = append(p.console, m)
			p.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- %s: %s", name, p.diagnostics())
			for _, m := range p.consoleMessages() {
				t.Logf("--- %s console: %s", name, m)
			}
		}
		cancel()
		<-done
	})
	p.do(chromedp.Navigate(url))
	p.waitJS("the page started", `document.body.dataset.ready === 'true'`)
	return p
}

func (p *page) consoleMessages() []chromedp.ConsoleMessage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]chromedp.ConsoleMessage(nil), p.console...)
}

// assertClean fails the test if the page threw an exception or the browser
// refused something for the page's Content Security Policy.
func (p *page) assertClean() {
	p.t.Helper()
	for _, m := range p.consoleMessages() {
		if m.IsException() || strings.Contains(m.Text, "Content Security Policy") {
			p.t.Errorf("%s: %s", p.name, m)
		}
	}
}

// do runs steps within 20 seconds.
func (p *page) do(steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 20*time.Second)
	defer cancel()
	require.NoError(p.t, chromedp.Do(ctx, steps...), "%s: %s", p.name, p.diagnostics())
}

// eval evaluates a JavaScript expression into T.
func eval[T any](p *page, expr string) T {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	require.NoError(p.t, err, "%s: evaluating %s", p.name, expr)
	return v
}

// waitJS polls the expression until it is true, failing after 30 seconds.
func (p *page) waitJS(what, expr string) {
	p.t.Helper()
	p.waitJSFor(30*time.Second, what, expr)
}

func (p *page) waitJSFor(d time.Duration, what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	var lastErr error
	for {
		ctx, cancel := context.WithTimeout(p.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: %s: not within %s (%v); %s", p.name, what, d, lastErr, p.diagnostics())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// diagnostics describes what the page shows, for failure messages.
func (p *page) diagnostics() string {
	ctx, cancel := context.WithTimeout(p.ctx, 3*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({
		view: document.body.dataset.view,
		alert: document.getElementById('alert')?.textContent,
		state: document.getElementById('conn-state')?.dataset.state,
		stateText: document.getElementById('conn-state')?.title,
		lines: [...document.querySelectorAll('#messages li')].map(li => li.className + ': ' + (li.querySelector('.body')?.textContent ?? li.textContent)).slice(-20),
		outbox: [...document.querySelectorAll('#outbox li')].map(li => li.textContent),
		online: [...document.querySelectorAll('#online li')].map(li => li.dataset.user),
	})`))
	if err != nil {
		return "(page state unavailable: " + err.Error() + ")"
	}
	return "page: " + s
}

// typeInto focuses an input and types text into it with real key events.
func (p *page) typeInto(id, text string) {
	p.t.Helper()
	// Not chromedp.Clear, which empties the value attribute but not what
	// was typed.
	clear := chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](`document.getElementById(`+jsString(id)+`).value = ''`)(ctx, t)
		return err
	})
	p.do(clear, chromedp.SendKeys(chromedp.ID(id), text))
}

func (p *page) click(id string) {
	p.t.Helper()
	p.do(chromedp.Click(chromedp.ID(id), chromedp.NodeVisible))
}

func (p *page) alert() string {
	p.t.Helper()
	return eval[string](p, `document.getElementById('alert').textContent`)
}

// register creates the account on the page's form, which then logs in.
func (p *page) register(name, password string) {
	p.t.Helper()
	p.click("tab-register")
	p.typeInto("register-name", name)
	p.typeInto("register-password", password)
	p.typeInto("register-confirm", password)
	p.click("register-submit")
	p.waitJS("logged in after registering", `document.body.dataset.view === 'lobby'`)
}

func (p *page) logIn(name, password string) {
	p.t.Helper()
	p.click("tab-login")
	p.typeInto("login-name", name)
	p.typeInto("login-password", password)
	p.click("login-submit")
}

// createRoom creates a room from the lobby, enters it and returns its code.
func (p *page) createRoom(name, password string) string {
	p.t.Helper()
	p.typeInto("create-name", name)
	p.typeInto("create-password", password)
	p.typeInto("create-confirm", password)
	p.click("create-submit")
	p.waitJS("the room's code shown", `!document.getElementById('created').hidden`)
	code := eval[string](p, `document.getElementById('created-code').textContent`)
	require.NotEmpty(p.t, code)
	p.click("enter-created")
	p.waitConnected()
	return code
}

// join joins a room from the lobby's form.
func (p *page) join(code, password string) {
	p.t.Helper()
	p.typeInto("join-code", code)
	p.typeInto("join-password", password)
	p.click("join-submit")
	p.waitConnected()
}

func (p *page) waitConnected() {
	p.t.Helper()
	p.waitJS("connected to the room", `document.body.dataset.view === 'room' && document.getElementById('conn-state').dataset.state === 'connected'`)
}

func (p *page) waitState(state string) {
	p.t.Helper()
	p.waitJS("connection state "+state, `document.getElementById('conn-state').dataset.state === `+jsString(state))
}

// send types a message and sends it with Enter, starting each new line
// with Shift+Enter.
func (p *page) send(body string) {
	p.t.Helper()
	steps := []chromedp.Action[chromedp.Void]{chromedp.Focus(chromedp.ID("message-input"))}
	for i, line := range strings.Split(body, "\n") {
		if i > 0 {
			steps = append(steps, pressEnter(kb.ModifierShift))
		}
		if line != "" {
			steps = append(steps, chromedp.SendKeys(chromedp.ID("message-input"), line))
		}
	}
	steps = append(steps, pressEnter(kb.ModifierNone))
	p.do(steps...)
	p.waitJS("the composer emptied after sending", `document.getElementById('message-input').value === ''`)
}

// pressEnter presses Enter on the focused element as a keyboard does: one
// key-down event that carries the text, which the page's handler can
// cancel, then a key-up. (kb.Enter sends the text in a separate char event,
// which no handler can cancel.)
func pressEnter(mod kb.Modifier) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		down := input.DispatchKeyEventParams{
			Type: input.DispatchKeyEventTypeKeyDown, Modifiers: int64(mod),
			Key: "Enter", Code: "Enter", Text: "\r", UnmodifiedText: "\r",
			WindowsVirtualKeyCode: 13, NativeVirtualKeyCode: 13,
		}
		if _, err := cdp.Call(ctx, t, input.DispatchKeyEvent, down); err != nil {
			return err
		}
		up := down
		up.Type, up.Text, up.UnmodifiedText = input.DispatchKeyEventTypeKeyUp, "", ""
		_, err := cdp.Call(ctx, t, input.DispatchKeyEvent, up)
		return err
	})
}

// shown is a message as the page shows it.
type shown struct {
	Seq    string `json:"seq"`
	Sender string `json:"sender"`
	Body   string `json:"body"`
	Own    bool   `json:"own"`
}

func (p *page) messages() []shown {
	p.t.Helper()
	raw := eval[string](p, `JSON.stringify([...document.querySelectorAll('#messages li.message')].map(li => ({
		seq: li.dataset.seq, sender: li.dataset.sender, body: li.querySelector('.body').textContent, own: li.classList.contains('own'),
	})))`)
	var out []shown
	require.NoError(p.t, json.Unmarshal([]byte(raw), &out))
	return out
}

func bodiesOf(ms []shown) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.Body)
	}
	return out
}

// waitMessages waits until the page shows n messages.
func (p *page) waitMessages(n int) []shown {
	p.t.Helper()
	p.waitJS(fmt.Sprintf("%d messages shown", n), fmt.Sprintf(`document.querySelectorAll('#messages li.message').length >= %d`, n))
	return p.messages()
}

// waitBody waits until the page shows a message with this body.
func (p *page) waitBody(body string) {
	p.t.Helper()
	p.waitJS("message "+body+" shown", `[...document.querySelectorAll('#messages li.message .body')].some(b => b.textContent === `+jsString(body)+`)`)
}

// systemLines are the page's system lines (presence, gaps, reconnections).
func (p *page) systemLines() []string {
	p.t.Helper()
	return eval[[]string](p, `[...document.querySelectorAll('#messages li.system')].map(li => li.textContent)`)
}

// onlineUsers are the names in the page's online list.
func (p *page) onlineUsers() []string {
	p.t.Helper()
	return eval[[]string](p, `[...document.querySelectorAll('#online li')].map(li => li.dataset.user)`)
}

func (p *page) waitOnline(names ...string) {
	p.t.Helper()
	b, _ := json.Marshal(names)
	p.waitJS(fmt.Sprintf("online list %v", names), `JSON.stringify([...document.querySelectorAll('#online li')].map(li => li.dataset.user)) === `+jsString(string(b)))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// waitWeb waits until chat serves the page.
func (s *stack) waitWeb(t *testing.T) {
	t.Helper()
	waitFor(t, s.chat, "chat's web page", func() error {
		resp, err := http.Get(s.webURL + "/config.json")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/config.json: %s", resp.Status)
		}
		return nil
	})
}
