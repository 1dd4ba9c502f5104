package natssink

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// Defaults for the zero values of [Config].
const (
	DefaultPublishTimeout   = 10 * time.Second
	DefaultConnectWait      = 30 * time.Second
	DefaultReconnectWait    = time.Second
	DefaultReconnectMaxWait = 30 * time.Second
	DefaultDuplicateWindow  = 2 * time.Minute
	DefaultMaxAge           = 30 * 24 * time.Hour
	DefaultDedupeMargin     = 30 * time.Second
	DefaultClockSkew        = 10 * time.Minute
)

// Config configures a [Sink]. Only URLs is required; every other zero value
// means the default said on the field.
type Config struct {
	// URLs are the NATS servers, comma separated
	// ("nats://10.0.0.1:4222,nats://10.0.0.2:4222", or "tls://..." ).
	URLs string
	// Node is this node's name, used in the connection name
	// ("oomscope <node>") that the server shows in its connection list.
	Node string
	// InProcess, when set, is a server in this process (the embedded
	// one) that the client reaches through an in-memory pipe instead of
	// TCP: no socket system calls and no netpoller wake-ups per message
	// (docs/performance.md). URLs then only name the server in messages.
	InProcess nats.InProcessConnProvider

	// CredsFile is a NATS credentials file (user JWT and NKey seed).
	CredsFile string
	// NKeySeedFile is a file holding a user NKey seed ("SU...").
	NKeySeedFile string
	// Token is an authentication token.
	Token string
	// User and Password are user/password authentication; set both or
	// neither. At most one of CredsFile, NKeySeedFile, Token and User may
	// be set.
	User     string
	Password string

	// TLSCAFile is a PEM file of the CAs that sign the server's
	// certificate; setting it (or TLSCertFile) requires TLS.
	TLSCAFile string
	// TLSCertFile and TLSKeyFile are a PEM client certificate and its key
	// for mutual TLS; set both or neither.
	TLSCertFile string
	TLSKeyFile  string

	// Stream is the JetStream stream that captures the subjects (default
	// [StreamName]).
	Stream string
	// CreateStream makes [New] create the stream, or update the existing
	// one, with [EnsureStream] (--nats-create-stream). Without it a missing
	// stream is an error.
	CreateStream bool
	// DuplicateWindow is the stream's duplicate window when CreateStream
	// is set (default [DefaultDuplicateWindow]). Otherwise the existing
	// stream's window is read and used.
	DuplicateWindow time.Duration
	// MaxAge is how long the stream keeps a report when CreateStream is set
	// (default [DefaultMaxAge]; negative: for ever). Keep it longer than
	// the outbox may retry a report: the lookup that deduplicates a late
	// retry can only find what the stream still holds.
	MaxAge time.Duration
	// Replicas is the stream's replica count when CreateStream is set
	// (default 1).
	Replicas int

	// PublishTimeout bounds one publish attempt, lookup included, on top of
	// the caller's context (default [DefaultPublishTimeout]).
	PublishTimeout time.Duration
	// ConnectWait is how long [New] waits for the first connection and the
	// stream check before it fails (default [DefaultConnectWait]). The
	// client keeps retrying during that time.
	ConnectWait time.Duration
	// ReconnectWait is the first delay between reconnect rounds; it doubles
	// each round up to ReconnectMaxWait, and up to a fifth of it is added
	// at random (defaults [DefaultReconnectWait], [DefaultReconnectMaxWait]).
	// Reconnecting never gives up.
	ReconnectWait    time.Duration
	ReconnectMaxWait time.Duration

	// DedupeMargin is subtracted from the stream's duplicate window to tell
	// when a delivery is old enough that the server may no longer remember
	// an earlier attempt; such a delivery is looked up in the stream before
	// it is published (default [DefaultDedupeMargin]). When the margin is
	// at least the window, every delivery is looked up.
	DedupeMargin time.Duration
	// ClockSkew is how far before Delivery.Queued the lookup starts, to
	// cover the difference between this node's clock and the server's
	// (default [DefaultClockSkew]).
	ClockSkew time.Duration

	// Logger receives connection events (default: none).
	Logger zerolog.Logger
	// Registerer, when not nil, gets the metrics oomscope_nats_connected,
	// oomscope_nats_reconnects_total and oomscope_nats_publishes_total;
	// [Sink.Close] unregisters them.
	Registerer prometheus.Registerer
}

// withDefaults returns c with its zero values replaced by defaults.
func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Stream == "" {
		c.Stream = StreamName
	}
	def(&c.DuplicateWindow, DefaultDuplicateWindow)
	def(&c.MaxAge, DefaultMaxAge)
	if c.MaxAge < 0 {
		c.MaxAge = 0 // JetStream's "no limit"
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	def(&c.PublishTimeout, DefaultPublishTimeout)
	def(&c.ConnectWait, DefaultConnectWait)
	def(&c.ReconnectWait, DefaultReconnectWait)
	def(&c.ReconnectMaxWait, DefaultReconnectMaxWait)
	def(&c.DedupeMargin, DefaultDedupeMargin)
	def(&c.ClockSkew, DefaultClockSkew)
	return c
}

// Validate reports the first problem with c: a missing URL, conflicting
// authentication settings, half a TLS key pair, a negative duration.
func (c Config) Validate() error {
	if strings.TrimSpace(c.URLs) == "" {
		return errors.New("natssink: no server URL (--nats-url)")
	}
	for u := range strings.SplitSeq(c.URLs, ",") {
		if strings.TrimSpace(u) == "" {
			return fmt.Errorf("natssink: empty server URL in %q", c.URLs)
		}
	}
	var auth []string
	if c.CredsFile != "" {
		auth = append(auth, "creds file")
	}
	if c.NKeySeedFile != "" {
		auth = append(auth, "nkey seed file")
	}
	if c.Token != "" {
		auth = append(auth, "token")
	}
	if c.User != "" {
		auth = append(auth, "user")
	}
	if len(auth) > 1 {
		return fmt.Errorf("natssink: %s are both set: use one way to authenticate", strings.Join(auth, " and "))
	}
	if (c.User == "") != (c.Password == "") {
		return errors.New("natssink: user and password must be set together")
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		return errors.New("natssink: TLS client certificate and key files must be set together")
	}
	if c.Replicas < 0 {
		return fmt.Errorf("natssink: negative replica count %d", c.Replicas)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"duplicate window", c.DuplicateWindow},
		{"publish timeout", c.PublishTimeout},
		{"connect wait", c.ConnectWait},
		{"reconnect wait", c.ReconnectWait},
		{"reconnect max wait", c.ReconnectMaxWait},
		{"dedupe margin", c.DedupeMargin},
		{"clock skew", c.ClockSkew},
	} {
		if d.v < 0 {
			return fmt.Errorf("natssink: negative %s %v", d.name, d.v)
		}
	}
	if d := c.withDefaults(); c.CreateStream && d.MaxAge > 0 && d.DuplicateWindow > d.MaxAge {
		return fmt.Errorf("natssink: duplicate window %v is longer than max age %v", d.DuplicateWindow, d.MaxAge)
	}
	return nil
}

// options returns the client options for c (with defaults applied).
func (c Config) options(h nats.Option) ([]nats.Option, error) {
	name := "oomscope"
	if c.Node != "" {
		name += " " + HeaderValue(c.Node)
	}
	base, maxWait := c.ReconnectWait, c.ReconnectMaxWait
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(true),
		// Nothing is buffered while disconnected: a publish then fails at
		// once and the outbox retries it. Success is the publish ack alone.
		nats.ReconnectBufSize(-1),
		nats.CustomReconnectDelay(func(attempts int) time.Duration {
			return backoff(attempts, base, maxWait)
		}),
		h,
	}
	if c.InProcess != nil {
		opts = append(opts, nats.InProcessServer(c.InProcess))
	}
	auth, err := c.AuthOptions()
	if err != nil {
		return nil, err
	}
	opts = append(opts, auth...)
	return opts, nil
}

// AuthOptions returns the client options for c's authentication and TLS
// settings: at most one of CredsFile, NKeySeedFile, Token and
// User/Password (see [Config.Validate]); TLSCAFile and the
// TLSCertFile/TLSKeyFile pair. The sink and the readers of the stream
// (oomscope tail, history) connect with the same.
func (c Config) AuthOptions() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case c.CredsFile != "":
		opts = append(opts, nats.UserCredentials(c.CredsFile))
	case c.NKeySeedFile != "":
		o, err := nats.NkeyOptionFromSeed(c.NKeySeedFile)
		if err != nil {
			return nil, fmt.Errorf("natssink: nkey seed file %s: %w", c.NKeySeedFile, err)
		}
		opts = append(opts, o)
	case c.Token != "":
		opts = append(opts, nats.Token(c.Token))
	case c.User != "":
		opts = append(opts, nats.UserInfo(c.User, c.Password))
	}
	if c.TLSCAFile != "" {
		opts = append(opts, nats.RootCAs(c.TLSCAFile))
	}
	if c.TLSCertFile != "" {
		opts = append(opts, nats.ClientCert(c.TLSCertFile, c.TLSKeyFile))
	}
	return opts, nil
}

// backoff is the delay before reconnect round attempts (1, 2, ...): base
// doubled each round, capped at max, plus up to a fifth at random.
func backoff(attempts int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempts && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	if j := int64(d / 5); j > 0 {
		d += time.Duration(rand.Int64N(j))
	}
	return d
}
