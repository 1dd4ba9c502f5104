// Package natsread reads oomscope reports back from the NATS JetStream
// stream that the NATS sink (package sink/natssink) publishes to: the
// messages of a stream from a start time to its end ([Read], for `oomscope
// history`), or as they arrive ([Follow], for `oomscope tail`).
//
// Both use an ordered consumer (ephemeral, memory storage, no acks; the
// client recreates it where it left off after a reconnect) with a subject
// filter made from a [Filter]: each name the filter gives becomes its
// subject token with [natssink.Token], each name it leaves out a "*".
// Because that mapping is lossy ("a.b" and "a_b" share a token, long names
// are cut and hashed), [Filter.Match] checks the decoded report's own names
// exactly.
//
// [Connect] builds the client options from a [natssink.Config] the way
// the sink does (credentials file, NKey seed file, token, user and
// password, TLS CA and client certificate), since the sink keeps its own
// option builder unexported.
package natsread

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/natssink"
)

// DefaultURL is the embedded server `oomscope run` starts when it is given
// no --nats-url.
const DefaultURL = "nats://127.0.0.1:4222"

// DefaultConnectTimeout bounds the first connection when
// [natssink.Config.ConnectWait] is zero.
const DefaultConnectTimeout = 5 * time.Second

// Filter selects reports by node, namespace and pod; an empty field
// selects every value.
type Filter struct {
	// Node is the node name: the report's host, or when that is empty the
	// node its pod record names.
	Node string
	// Namespace is the pod's namespace.
	Namespace string
	// Pod is the pod's name, or its UID (a pod whose name is unknown is
	// published with its UID as pod token).
	Pod string
}

// Subject returns the subject filter for f:
// oomscope.v1.kill.<node>.<namespace>.<pod>, each given name mapped with
// [natssink.Token], each missing one "*". A pod given without a namespace
// also matches a pod known only by its UID (namespace token "_").
func (f Filter) Subject() string {
	tok := func(s string) string {
		if s == "" {
			return "*"
		}
		return natssink.Token(s)
	}
	return natssink.SubjectPrefix + tok(f.Node) + "." + tok(f.Namespace) + "." + tok(f.Pod)
}

// Match reports whether r's own names are the ones f gives (exactly, not
// just their subject tokens).
func (f Filter) Match(r *report.Enriched) bool {
	if r == nil {
		return false
	}
	if f.Node != "" && NodeOf(r) != f.Node {
		return false
	}
	if f.Namespace == "" && f.Pod == "" {
		return true
	}
	p := r.Pod
	if p == nil {
		return false
	}
	if f.Namespace != "" && p.Namespace != f.Namespace {
		return false
	}
	return f.Pod == "" || p.Name == f.Pod || p.UID == f.Pod
}

// IsZero reports whether f selects everything.
func (f Filter) IsZero() bool { return f == Filter{} }

// NodeOf returns the node a report is published under: its host, or when
// that is empty the node its pod record names (as [natssink.Subject]).
func NodeOf(r *report.Enriched) string {
	if r == nil {
		return ""
	}
	if r.Report != nil && r.Host != "" {
		return r.Host
	}
	if r.Pod != nil {
		return r.Pod.Node
	}
	return ""
}

// ErrNotReport is wrapped by [Decode]'s error for a message that is not an
// oomscope report.
var ErrNotReport = errors.New("not an oomscope report")

// Decode decodes a message payload into a report. It fails, wrapping
// [ErrNotReport], when the payload is not JSON, is not an object, has
// another schema than [report.Schema] or has no id.
func Decode(data []byte) (*report.Enriched, error) {
	var r report.Enriched
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotReport, err)
	}
	if r.Report == nil || r.Schema == "" {
		return nil, fmt.Errorf("%w: no schema", ErrNotReport)
	}
	if r.Schema != report.Schema {
		return nil, fmt.Errorf("%w: schema %q, want %s", ErrNotReport, report.Escape(r.Schema, 64), report.Schema)
	}
	if r.ID == "" {
		return nil, fmt.Errorf("%w: no id", ErrNotReport)
	}
	return &r, nil
}

// Options returns the client options for cfg's authentication and TLS
// settings, built as the NATS sink builds them: at most one of
// CredsFile, NKeySeedFile, Token and User/Password; TLSCAFile and the
// TLSCertFile/TLSKeyFile pair. name is the connection name the server
// shows. The client reconnects for ever once connected.
func Options(cfg natssink.Config, name string) ([]nats.Option, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
	}
	auth, err := cfg.AuthOptions()
	if err != nil {
		return nil, fmt.Errorf("natsread: %w", err)
	}
	opts = append(opts, auth...)
	return opts, nil
}

// Connect validates cfg ([natssink.Config.Validate]) and connects to its
// servers with [Options] and extra. Unlike the sink it does not keep
// retrying a first connection: a command run by hand says at once that no
// server answers (each server is given cfg.ConnectWait, default
// [DefaultConnectTimeout]). It returns early, with ctx's error, when ctx
// ends first.
func Connect(ctx context.Context, cfg natssink.Config, name string, extra ...nats.Option) (*nats.Conn, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := Options(cfg, name)
	if err != nil {
		return nil, err
	}
	wait := cfg.ConnectWait
	if wait == 0 {
		wait = DefaultConnectTimeout
	}
	opts = append(opts, nats.Timeout(wait))
	opts = append(opts, extra...)
	type result struct {
		nc  *nats.Conn
		err error
	}
	done := make(chan result, 1)
	go func() {
		nc, err := nats.Connect(cfg.URLs, opts...)
		done <- result{nc, err}
	}()
	select {
	case res := <-done:
		if res.err != nil {
			return nil, fmt.Errorf("natsread: connecting to %s: %w", RedactURLs(cfg.URLs), res.err)
		}
		return res.nc, nil
	case <-ctx.Done():
		go func() {
			if res := <-done; res.nc != nil {
				res.nc.Close()
			}
		}()
		return nil, fmt.Errorf("natsread: connecting to %s: %w", RedactURLs(cfg.URLs), context.Cause(ctx))
	}
}

// RedactURLs returns a server list with the user information of each URL
// (user:password@, token@) replaced by "[redacted]".
func RedactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, u := range parts {
		u = strings.TrimSpace(u)
		if scheme, rest, ok := strings.Cut(u, "://"); ok {
			if at := strings.LastIndex(rest, "@"); at >= 0 {
				u = scheme + "://[redacted]@" + rest[at+1:]
			}
		} else if at := strings.LastIndex(u, "@"); at >= 0 {
			u = "[redacted]@" + u[at+1:]
		}
		parts[i] = u
	}
	return strings.Join(parts, ",")
}
