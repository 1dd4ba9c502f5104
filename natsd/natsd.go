// Package natsd runs the NATS server that oomscope embeds: when `oomscope
// run` is given no --nats-url, it starts one in-process, with JetStream on
// a file store under its state directory, and publishes to it with the
// NATS sink. Other programs (a collector, the nats CLI) read the reports
// from it.
//
// Durability: with [Config.SyncAlways] the server's Options.SyncAlways is
// set, which makes the JetStream file store sync every write to disk
// before the publish is acknowledged (the server's "sync: always"; the
// default is a sync every 2 minutes, Options.SyncInterval). So a report
// the sink was told is stored survives the node crashing right after.
//
// The server listens on one client address only: no HTTP monitoring port
// (unless [Config.Monitor] asks for one), no cluster, gateway, leaf node,
// websocket or MQTT port, no authentication (keep it on loopback). Its log
// goes to a zerolog logger, level-mapped. A store directory is locked
// while a server uses it: two servers writing one JetStream store would
// corrupt it.
package natsd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/rs/zerolog"
)

// DefaultListen is where the embedded server listens unless told otherwise.
const DefaultListen = "127.0.0.1:4222"

// DefaultStartTimeout bounds how long [Start] waits for the server (and the
// recovery of its JetStream store) to be ready.
const DefaultStartTimeout = 30 * time.Second

// Config configures the embedded server.
type Config struct {
	// Listen is the client address, host:port (default [DefaultListen]).
	// Port 0 picks a free port (see [Server.ClientURL]). The host must be
	// given: "0.0.0.0:4222" listens on every interface, which exposes an
	// unauthenticated server; keep it on loopback.
	Listen string
	// StoreDir is the JetStream store directory (oomscope: <state-dir>/nats),
	// created when missing. Required.
	StoreDir string
	// SyncAlways syncs every JetStream write to disk before it is
	// acknowledged (Options.SyncAlways). Without it the server syncs every
	// 2 minutes and a crash can lose acknowledged reports.
	SyncAlways bool
	// ServerName is the server's name (default "oomscope").
	ServerName string
	// Monitor, when not empty, is a host:port for the server's HTTP
	// monitoring endpoints (/varz, /jsz, ...). Empty: none.
	Monitor string
	// MaxStore bounds the file store in bytes (default: the server's, 75%
	// of the free disk).
	MaxStore int64
	// StartTimeout bounds the wait for the server to be ready (default
	// [DefaultStartTimeout]).
	StartTimeout time.Duration
	// Logger receives the server's log: notices at info level, then warn,
	// error, debug and trace; fatal errors at error level with fatal=true.
	// The server's debug and trace logging are on only when the logger's
	// level lets them through.
	Logger zerolog.Logger
}

// Server is a running embedded server.
type Server struct {
	srv      *server.Server
	url      string
	log      zerolog.Logger
	unlock   func()
	stopOnce sync.Once
}

// parseListen checks a host:port and returns its parts.
func parseListen(listen string) (string, int, error) {
	host, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("natsd: listen address %q: %w", listen, err)
	}
	if host == "" {
		return "", 0, fmt.Errorf("natsd: listen address %q has no host: say 127.0.0.1:%s (or 0.0.0.0:%s for every interface)", listen, p, p)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("natsd: listen address %q: port %q is not a number from 0 to 65535", listen, p)
	}
	return host, port, nil
}

// Start starts the server and returns once it accepts clients with
// JetStream enabled, or fails: a bad Listen address, a port already taken,
// a store directory that cannot be made or is in use by another server, a
// store that does not recover within StartTimeout. ctx bounds the start
// only; the server runs until [Server.Shutdown].
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	if cfg.ServerName == "" {
		cfg.ServerName = "oomscope"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	host, port, err := parseListen(cfg.Listen)
	if err != nil {
		return nil, err
	}
	if cfg.StoreDir == "" {
		return nil, errors.New("natsd: no store directory")
	}
	opts := &server.Options{
		ServerName:             cfg.ServerName,
		Host:                   host,
		Port:                   port,
		JetStream:              true,
		StoreDir:               cfg.StoreDir,
		SyncAlways:             cfg.SyncAlways,
		JetStreamMaxStore:      cfg.MaxStore,
		NoSigs:                 true,
		DisableJetStreamBanner: true,
	}
	if port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if cfg.Monitor != "" {
		mh, mp, err := parseListen(cfg.Monitor)
		if err != nil {
			return nil, fmt.Errorf("monitor: %w", err)
		}
		opts.HTTPHost, opts.HTTPPort = mh, mp
		if mp == 0 {
			opts.HTTPPort = server.RANDOM_PORT
		}
	}
	log := cfg.Logger.With().Str("component", "nats-server").Logger()

	// The server reports a taken port only in its log, after the store was
	// opened: try the port first for a clear error.
	if port != 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return nil, fmt.Errorf("natsd: cannot listen on %s (is another oomscope or NATS server running? pass --nats-url to use it): %w", cfg.Listen, err)
		}
		l.Close()
	}
	if err := os.MkdirAll(cfg.StoreDir, 0o700); err != nil {
		return nil, fmt.Errorf("natsd: store directory: %w", err)
	}
	unlock, err := lockDir(cfg.StoreDir)
	if err != nil {
		return nil, err
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		unlock()
		return nil, fmt.Errorf("natsd: %w", err)
	}
	fatal := make(chan string, 1)
	adapter := &logger{log: log, fatal: fatal}
	srv.SetLoggerV2(adapter, log.GetLevel() <= zerolog.DebugLevel, log.GetLevel() <= zerolog.TraceLevel, false)
	s := &Server{srv: srv, log: log, unlock: unlock}

	srv.Start()
	if err := s.waitStarted(ctx, cfg.StartTimeout, fatal); err != nil {
		s.Shutdown()
		return nil, fmt.Errorf("natsd: server on %s with store %s: %w", cfg.Listen, cfg.StoreDir, err)
	}
	addr := srv.Addr().(*net.TCPAddr)
	ip := addr.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if addr.IP.To4() == nil {
			ip = net.IPv6loopback
		}
	}
	s.url = (&url.URL{Scheme: "nats", Host: net.JoinHostPort(ip.String(), strconv.Itoa(addr.Port))}).String()
	js := srv.JetStreamConfig()
	log.Info().Str("url", s.url).Str("store_dir", js.StoreDir).Bool("sync_always", js.SyncAlways).Msg("embedded NATS server ready")
	return s, nil
}

func (s *Server) waitStarted(ctx context.Context, timeout time.Duration, fatal <-chan string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !s.Ready() {
		select {
		case msg := <-fatal:
			return fmt.Errorf("failed to start: %s", msg)
		case <-ctx.Done():
			return fmt.Errorf("not ready within %v: %w", timeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
	return nil
}

// ClientURL is the URL clients connect to ("nats://127.0.0.1:4222"), with
// the actual port when Listen asked for port 0.
func (s *Server) ClientURL() string { return s.url }

// InProcessConn opens a client connection to the server through an
// in-memory pipe (nats.InProcessServer): a client in this process
// reaches it without TCP.
func (s *Server) InProcessConn() (net.Conn, error) { return s.srv.InProcessConn() }

// Ready reports whether the server is running, listening and has
// JetStream enabled.
func (s *Server) Ready() bool {
	return s.srv.Running() && s.srv.Addr() != nil && s.srv.JetStreamEnabled()
}

// WaitReady waits up to timeout for [Server.Ready].
func (s *Server) WaitReady(timeout time.Duration) error {
	end := time.Now().Add(timeout)
	for !s.Ready() {
		if time.Now().After(end) {
			return fmt.Errorf("natsd: server not ready within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Shutdown stops the server, waits until it has stopped (its store
// flushed and closed) and releases the store directory. It is safe to call
// more than once.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() {
		s.srv.Shutdown()
		s.srv.WaitForShutdown()
		s.unlock()
		s.log.Info().Msg("embedded NATS server stopped")
	})
}

// logger is the server's Logger on zerolog.
type logger struct {
	log   zerolog.Logger
	fatal chan<- string
}

func (l *logger) Noticef(format string, v ...any) { l.log.Info().Msgf(format, v...) }
func (l *logger) Warnf(format string, v ...any)   { l.log.Warn().Msgf(format, v...) }
func (l *logger) Errorf(format string, v ...any)  { l.log.Error().Msgf(format, v...) }
func (l *logger) Debugf(format string, v ...any)  { l.log.Debug().Msgf(format, v...) }
func (l *logger) Tracef(format string, v ...any)  { l.log.Trace().Msgf(format, v...) }

// Fatalf logs at error level and reports the message to Start; it does
// not exit (the server's own logger would).
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.log.Error().Bool("fatal", true).Msg(msg)
	select {
	case l.fatal <- msg:
	default:
	}
}

var _ server.Logger = (*logger)(nil)
