package client

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"google.golang.org/grpc"
)

// Default addresses, those the services listen on out of the box.
const (
	DefaultAuthURL     = "http://127.0.0.1:8080"
	DefaultChatAddress = "127.0.0.1:5050"
)

// Backoff shapes the delays between reconnection attempts: the n-th retry
// waits about Initial*Multiplier^n, capped at Max, spread by ±Jitter (a
// fraction, 0 to 1) so that many clients do not come back in lockstep.
// The count starts over once a reopened stream has stayed open for
// ResetAfter, so a stream the service cuts right after opening it is
// retried ever more slowly rather than every Initial. A delay the service
// asks for (Error.RetryAfter) replaces a shorter one.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64
	Jitter     float64
	ResetAfter time.Duration
}

// DefaultBackoff starts at 100ms and backs off to 5s; a stream open for
// 10s starts it over.
var DefaultBackoff = Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.2, ResetAfter: 10 * time.Second}

type config struct {
	authURL       string
	chatAddresses []string
	tls           *tls.Config
	httpClient    *http.Client
	logger        *slog.Logger
	backoff       Backoff
	dialOptions   []grpc.DialOption
	bufferSize    int
	maxMessage    int
	// maxMessageSet tells a limit set with WithMaxMessageBytes, which caps
	// the service's, from the default, which only stands in for it.
	maxMessageSet bool
	openTimeout   time.Duration
	// backlog is how many earlier messages a new session asks for.
	backlog int
	// credentialsHook is called after each login the Client made by itself.
	credentialsHook func(Credentials)
}

// Option configures a Client.
type Option func(*config)

// WithAuthURL sets the auth service's base URL (default DefaultAuthURL).
func WithAuthURL(url string) Option { return func(c *config) { c.authURL = url } }

// WithChatAddress sets where the chat service listens (default
// DefaultChatAddress). Each call replaces the addresses of the one before.
//
// One address is any gRPC target: host:port, or e.g. dns:///host:port or
// passthrough:///host:port. A host name is looked up in DNS, and when it
// has several A or AAAA records each is taken for an instance of the
// service.
//
// Several addresses name the instances of one chat service, which share
// its rooms; each must then be host:port. The Client connects to one
// instance at a time, picked at random so that clients spread over them,
// and moves to another when it fails, resuming the room's stream there
// (see "Several chat instances" in the package documentation). New refuses
// an empty address, and one with a comma: split a comma-separated list
// (e.g. from an environment variable) into separate arguments.
func WithChatAddress(addrs ...string) Option {
	return func(c *config) { c.chatAddresses = addrs }
}

// WithTLSConfig makes the chat connection use TLS with cfg. Without it, or
// after WithInsecure, the connection is plaintext, as the services speak out
// of the box; the auth URL's scheme chooses for HTTP.
func WithTLSConfig(cfg *tls.Config) Option { return func(c *config) { c.tls = cfg } }

// WithInsecure makes the chat connection plaintext (the default).
func WithInsecure() Option { return func(c *config) { c.tls = nil } }

// WithHTTPClient sets the HTTP client for the auth service. The default has a
// 30-second timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *config) { c.httpClient = hc } }

// WithLogger sets where the Client logs what it does by itself:
// reconnections (Info), logins and room-token renewals (Info and Debug),
// messages the service refused (Warn). Records of a room's session carry
// its short code as "room". The Client never logs a password, a token or
// a message body.
//
// Without it, or with nil, the Client logs nothing: a library does not
// write to a program's log unless asked. Pass slog.Default() to log where
// the program does.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// WithBackoff sets the reconnection delays (default DefaultBackoff). Zero
// fields keep their defaults.
func WithBackoff(b Backoff) Option { return func(c *config) { c.backoff = b } }

// WithDialOptions adds gRPC dial options, applied after the Client's own
// (e.g. a custom dialer for tests). A grpc.WithDefaultServiceConfig among
// them replaces the Client's load-balancing policy, pick_first with the
// addresses shuffled: pick_first without shuffling, for instance, makes
// the first address the preferred instance and the others standbys.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(c *config) { c.dialOptions = append(c.dialOptions, opts...) }
}

// WithEventBuffer sets how many unread events each room holds for Receive
// (default DefaultEventBuffer; n below 1 keeps the default). The Client
// reads the room's stream whether or not the application reads the room,
// so that sending never waits for Receive and the service never finds the
// stream too slow: when an event arrives with the buffer full, the oldest
// unread event is dropped, and Receive returns a *Gap counting what was
// dropped before the events that were kept (see "Unread events" in the
// package documentation).
func WithEventBuffer(n int) Option { return func(c *config) { c.bufferSize = n } }

// DefaultMaxMessageBytes is the chat service's default message size limit.
const DefaultMaxMessageBytes = 4096

// WithMaxMessageBytes caps the message body Send accepts. Without it Send
// checks bodies against the limit the chat service advertises when its
// stream opens, or DefaultMaxMessageBytes for a service that does not;
// with it, against the smaller of n and the service's limit.
func WithMaxMessageBytes(n int) Option {
	return func(c *config) { c.maxMessage, c.maxMessageSet = n, true }
}

// DefaultOpenTimeout bounds one attempt to open the room's stream.
const DefaultOpenTimeout = 10 * time.Second

// WithOpenTimeout bounds each attempt to open the room's stream, renewal
// of the room token included (default DefaultOpenTimeout). An attempt that
// runs out of time counts as the service being unavailable: the Client
// backs off and tries again. A join's first attempt is bounded too.
func WithOpenTimeout(d time.Duration) Option { return func(c *config) { c.openTimeout = d } }

// WithCredentialsHook sets a function the Client calls with the new
// credentials each time it logs in again by itself (see LogIn), e.g. to
// show it or to store the new token. It is called from the goroutine that
// needed the token, often the session's own: it must return promptly and
// must not call Leave, Disconnect or Close.
func WithCredentialsHook(fn func(Credentials)) Option {
	return func(c *config) { c.credentialsHook = fn }
}

// DefaultBacklog is how many of a room's latest messages a join asks
// for unless WithBacklog says otherwise.
const DefaultBacklog = 50

// WithBacklog sets how many of the room's latest messages, sent before
// the join (JoinRoom or JoinChatRoom), Receive returns first, marked
// Message.Earlier (default DefaultBacklog; 0 for none, and New refuses a
// negative n). The chat service sends at most what its history holds, and
// may cap n further.
//
// Only a new session asks for them: a stream the Client reopens after a
// break resumes after the last message received instead, so earlier
// messages are never delivered twice.
func WithBacklog(n int) Option { return func(c *config) { c.backlog = n } }

func newConfig(opts []Option) config {
	c := config{
		authURL:       DefaultAuthURL,
		chatAddresses: []string{DefaultChatAddress},
		backoff:       DefaultBackoff,
		bufferSize:    DefaultEventBuffer,
		maxMessage:    DefaultMaxMessageBytes,
		backlog:       DefaultBacklog,
	}
	for _, o := range opts {
		o(&c)
	}
	if c.httpClient == nil {
		c.httpClient = &http.Client{Timeout: 30 * time.Second}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	d := DefaultBackoff
	if c.backoff.Initial <= 0 {
		c.backoff.Initial = d.Initial
	}
	if c.backoff.Max <= 0 {
		c.backoff.Max = d.Max
	}
	if c.backoff.Multiplier < 1 {
		c.backoff.Multiplier = d.Multiplier
	}
	if c.backoff.Jitter < 0 || c.backoff.Jitter > 1 {
		c.backoff.Jitter = d.Jitter
	}
	if c.backoff.ResetAfter <= 0 {
		c.backoff.ResetAfter = d.ResetAfter
	}
	if c.bufferSize <= 0 {
		c.bufferSize = DefaultEventBuffer
	}
	if c.maxMessage <= 0 {
		c.maxMessage, c.maxMessageSet = DefaultMaxMessageBytes, false
	}
	if c.openTimeout <= 0 {
		c.openTimeout = DefaultOpenTimeout
	}
	return c
}
