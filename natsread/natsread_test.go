package natsread

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oomscope/oomscope/natsd"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/natssink"
)

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// startServer starts the embedded server on a random loopback port with a
// temporary store.
func startServer(t *testing.T) *natsd.Server {
	t.Helper()
	srv, err := natsd.Start(ctxT(t), natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// newSink is a NATS sink on url that creates the stream.
func newSink(t *testing.T, url string) *natssink.Sink {
	t.Helper()
	s, err := natssink.New(ctxT(t), natssink.Config{URLs: url, CreateStream: true, ConnectWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func kill(id, node, ns, pod string) *report.Enriched {
	r := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: id, Host: node, Kind: report.KindMemcg,
		Victims: []report.Victim{{PID: 42, Comm: "app"}}}}
	if pod != "" {
		r.Pod = &report.Pod{Namespace: ns, Name: pod, UID: "uid-" + pod}
	}
	return r
}

func publish(t *testing.T, s *natssink.Sink, rs ...*report.Enriched) {
	t.Helper()
	for _, r := range rs {
		if err := s.Publish(ctxT(t), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

func jsOf(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	nc, err := Connect(ctxT(t), natssink.Config{URLs: url}, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func TestFilterSubject(t *testing.T) {
	for _, c := range []struct {
		f    Filter
		want string
	}{
		{Filter{}, "oomscope.v1.kill.*.*.*"},
		{Filter{Node: "ip-10-0-0-1.ec2.internal"}, "oomscope.v1.kill.ip-10-0-0-1_ec2_internal.*.*"},
		{Filter{Namespace: "shop", Pod: "cart-1"}, "oomscope.v1.kill.*.shop.cart-1"},
		{Filter{Pod: "x.>\r\nPUB"}, "oomscope.v1.kill.*.*.x____PUB"},
		{Filter{Namespace: "*", Pod: ">"}, "oomscope.v1.kill.*._._"},
	} {
		if got := c.f.Subject(); got != c.want {
			t.Errorf("%+v.Subject() = %q, want %q", c.f, got, c.want)
		}
	}
	// Every subject the sink makes for a matching report is matched by
	// the filter's subject, long (hashed) names included.
	long := strings.Repeat("n", 200)
	r := kill("a", long, "ns."+long, "p\u202e"+long)
	f := Filter{Node: long, Namespace: "ns." + long, Pod: "p\u202e" + long}
	if got, want := f.Subject(), natssink.Subject(r); got != want {
		t.Errorf("filter subject %q, sink subject %q", got, want)
	}
}

func TestFilterMatch(t *testing.T) {
	r := kill("a", "node-1", "shop", "cart")
	uidOnly := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "b", Host: "node-1"}, Pod: &report.Pod{UID: "0b7e"}}
	nodeLevel := kill("c", "", "", "")
	nodeLevel.Pod = nil
	fromPod := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "d"}, Pod: &report.Pod{Namespace: "shop", Name: "cart", Node: "node-2"}}
	for _, c := range []struct {
		f    Filter
		r    *report.Enriched
		want bool
	}{
		{Filter{}, r, true},
		{Filter{Node: "node-1"}, r, true},
		{Filter{Node: "node_1"}, r, false}, // same token, other name
		{Filter{Namespace: "shop"}, r, true},
		{Filter{Namespace: "shop", Pod: "cart"}, r, true},
		{Filter{Pod: "uid-cart"}, r, true},
		{Filter{Pod: "cart2"}, r, false},
		{Filter{Namespace: "shop"}, nodeLevel, false},
		{Filter{Pod: "0b7e"}, uidOnly, true},
		{Filter{Node: "node-2"}, fromPod, true},
		{Filter{}, nil, false},
	} {
		if got := c.f.Match(c.r); got != c.want {
			t.Errorf("%+v.Match(%v) = %v, want %v", c.f, c.r, got, c.want)
		}
	}
}

func TestDecode(t *testing.T) {
	if _, err := Decode([]byte(`{"schema":"oomscope.report/v1","id":"x","kind":"memcg","victims":[]}`)); err != nil {
		t.Errorf("a report: %v", err)
	}
	for _, bad := range []string{``, `hello`, `[]`, `{}`, `{"schema":"other/v9","id":"x"}`, `{"schema":"oomscope.report/v1"}`} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrNotReport) {
			t.Errorf("Decode(%q) = %v, want ErrNotReport", bad, err)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 10, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		in   string
		want time.Time
	}{
		{"24h", now.Add(-24 * time.Hour)},
		{"90m", now.Add(-90 * time.Minute)},
		{"7d", now.Add(-7 * 24 * time.Hour)},
		{"1d12h", now.Add(-36 * time.Hour)},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
		{"2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.Local)},
		{"2026-03-01 10:30:00", time.Date(2026, 3, 1, 10, 30, 0, 0, time.Local)},
	} {
		got, err := ParseSince(c.in, now)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "0", "-1h", "d", "yesterday", "1d-2h"} {
		if _, err := ParseSince(bad, now); err == nil {
			t.Errorf("ParseSince(%q) succeeded", bad)
		}
	}
}

func TestRedactURLs(t *testing.T) {
	got := RedactURLs("nats://u:p@a:4222, tls://tok@b:4222,c:4222")
	if want := "nats://[redacted]@a:4222,tls://[redacted]@b:4222,c:4222"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestReadFiltersAndSince: Read delivers exactly the messages of the
// filter stored since the start time, in stream order, and stops at the
// end of the stream.
func TestReadFiltersAndSince(t *testing.T) {
	srv := startServer(t)
	s := newSink(t, srv.ClientURL())
	publish(t, s, kill("old-1", "node-1", "shop", "cart"), kill("old-2", "node-2", "shop", "cart"))
	time.Sleep(50 * time.Millisecond)
	since := time.Now()
	time.Sleep(50 * time.Millisecond)
	publish(t, s,
		kill("new-1", "node-1", "shop", "cart"),
		kill("new-2", "node-1", "web", "front"),
		kill("new-3", "node-2", "shop", "cart"),
		kill("new-4", "node-1", "", ""),
	)
	js := jsOf(t, srv.ClientURL())
	read := func(q Query) []string {
		t.Helper()
		var ids []string
		_, err := Read(ctxT(t), js, q, func(m Message) error {
			r, err := Decode(m.Data)
			if err != nil {
				return err
			}
			ids = append(ids, r.ID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{}, "old-1 old-2 new-1 new-2 new-3 new-4"},
		{Query{Since: since}, "new-1 new-2 new-3 new-4"},
		{Query{Since: since, Filter: Filter{Node: "node-1"}}, "new-1 new-2 new-4"},
		{Query{Filter: Filter{Namespace: "shop", Pod: "cart"}}, "old-1 old-2 new-1 new-3"},
		{Query{Since: since, Filter: Filter{Node: "node-2", Namespace: "shop"}}, "new-3"},
		{Query{Filter: Filter{Pod: "nothing"}}, ""},
		{Query{Since: time.Now().Add(time.Hour)}, ""},
	} {
		if got := strings.Join(read(c.q), " "); got != c.want {
			t.Errorf("Read(%+v) = %q, want %q", c.q, got, c.want)
		}
	}
	if _, err := Read(ctxT(t), js, Query{Stream: "NOPE"}, func(Message) error { return nil }); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("missing stream: %v", err)
	}
	stop := errors.New("stop")
	n, err := Read(ctxT(t), js, Query{}, func(Message) error { return stop })
	if n != 1 || !errors.Is(err, stop) {
		t.Errorf("fn error: n %d, err %v", n, err)
	}
}

// TestFollow: Follow delivers only new messages of the filter, in order,
// and returns nil when its context ends.
func TestFollow(t *testing.T) {
	srv := startServer(t)
	s := newSink(t, srv.ClientURL())
	publish(t, s, kill("before", "node-1", "shop", "cart"))
	js := jsOf(t, srv.ClientURL())
	ctx, cancel := context.WithCancel(ctxT(t))
	ready := make(chan struct{})
	var (
		mu  sync.Mutex
		ids []string
	)
	got3 := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, js, Query{Filter: Filter{Namespace: "shop"}}, func() { close(ready) }, func(m Message) error {
			mu.Lock()
			defer mu.Unlock()
			ids = append(ids, m.MsgID)
			if len(ids) == 3 {
				close(got3)
			}
			return nil
		})
	}()
	<-ready
	publish(t, s, kill("a", "node-1", "shop", "cart"), kill("b", "node-1", "web", "x"), kill("c", "node-2", "shop", "y"), kill("d", "node-3", "shop", "z"))
	select {
	case <-got3:
	case <-time.After(20 * time.Second):
		t.Fatal("Follow did not deliver 3 messages")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Follow = %v after cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not stop when its context ended")
	}
	if got := strings.Join(ids, " "); got != "a c d" {
		t.Errorf("followed %q, want %q", got, "a c d")
	}
}

// TestConnectAuth: the auth settings of natssink.Config reach the server
// (user/password and token), a wrong one is refused at once, and a server
// that is not there is reported without a long wait.
func TestConnectAuth(t *testing.T) {
	port := func() int {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().(*net.TCPAddr).Port
	}
	serve := func(mod func(*server.Options)) string {
		o := &server.Options{Host: "127.0.0.1", Port: port(), NoLog: true, NoSigs: true}
		mod(o)
		s, err := server.NewServer(o)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(s.Shutdown)
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("server not ready")
		}
		return "nats://127.0.0.1:" + strconv.Itoa(o.Port)
	}
	try := func(cfg natssink.Config) error {
		nc, err := Connect(ctxT(t), cfg, "test")
		if err == nil {
			nc.Close()
		}
		return err
	}
	u := serve(func(o *server.Options) { o.Username, o.Password = "reader", "pa ss" })
	if err := try(natssink.Config{URLs: u, User: "reader", Password: "pa ss"}); err != nil {
		t.Errorf("user/password: %v", err)
	}
	if err := try(natssink.Config{URLs: u, User: "reader", Password: "wrong"}); err == nil || !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("wrong password: %v", err)
	}
	tok := serve(func(o *server.Options) { o.Authorization = "t0ken" })
	if err := try(natssink.Config{URLs: tok, Token: "t0ken"}); err != nil {
		t.Errorf("token: %v", err)
	}
	if err := try(natssink.Config{URLs: tok, Token: "t0ken", User: "x", Password: "y"}); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("token and user: %v", err)
	}
	t0 := time.Now()
	err := try(natssink.Config{URLs: fmt.Sprintf("nats://u:secret@127.0.0.1:%d", port())})
	if !errors.Is(err, nats.ErrNoServers) || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "[redacted]") {
		t.Errorf("no server: %v", err)
	}
	if d := time.Since(t0); d > 3*time.Second {
		t.Errorf("no server reported after %v", d)
	}
}

// TestReaderLeastPrivilege: Read and Follow work as a user with only the
// permissions docs/nats.md lists for readers, who cannot publish a report.
func TestReaderLeastPrivilege(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o := &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "admin", Password: "a"},
			{Username: "reader", Password: "r", Permissions: &server.Permissions{
				Publish: &server.SubjectPermission{Allow: []string{
					"$JS.API.STREAM.INFO.OOMSCOPE",
					"$JS.API.CONSUMER.CREATE.OOMSCOPE.>",
					"$JS.API.CONSUMER.DELETE.OOMSCOPE.>",
					"$JS.API.CONSUMER.MSG.NEXT.OOMSCOPE.>",
				}},
				Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
			}},
		}}
	srv, err := server.NewServer(o)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready")
	}
	url := "nats://127.0.0.1:" + strconv.Itoa(port)
	s, err := natssink.New(ctxT(t), natssink.Config{URLs: url, User: "admin", Password: "a", CreateStream: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	publish(t, s, kill("one", "node-1", "shop", "cart"))

	nc, err := Connect(ctxT(t), natssink.Config{URLs: url, User: "reader", Password: "r"}, "reader")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	n, err := Read(ctxT(t), js, Query{Filter: Filter{Namespace: "shop"}}, func(Message) error { return nil })
	if n != 1 || err != nil {
		t.Errorf("Read as reader: %d, %v", n, err)
	}
	ctx, cancel := context.WithCancel(ctxT(t))
	got := make(chan string, 1)
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		done <- Follow(ctx, js, Query{}, func() { close(ready) }, func(m Message) error {
			got <- m.MsgID
			return nil
		})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Follow as reader: %v", err)
	}
	publish(t, s, kill("two", "node-1", "shop", "cart"))
	select {
	case id := <-got:
		if id != "two" {
			t.Errorf("followed %q", id)
		}
	case err := <-done:
		t.Fatalf("Follow as reader: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Follow as reader delivered nothing")
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Follow: %v", err)
	}
	pctx, pcancel := context.WithTimeout(ctxT(t), 2*time.Second)
	defer pcancel()
	if _, err := js.Publish(pctx, "oomscope.v1.kill.node-1.shop.cart", []byte("{}")); err == nil {
		t.Error("the reader could publish a report")
	}
}
