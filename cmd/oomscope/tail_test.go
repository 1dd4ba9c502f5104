package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/spf13/pflag"

	"github.com/oomscope/oomscope/natsd"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
	"github.com/oomscope/oomscope/sink/natssink"
)

// hostileComm and hostilePod hold what a tenant can put in a process or
// pod name to break a terminal or a table: a line break, escape sequences
// (clear screen, set title) and the right-to-left override.
const (
	hostileComm = "evil\n\x1b[2J\u202egpj.exe"
	hostilePod  = "p\r\nod\x1b]0;owned\a\u202e"
)

// ctxTest is a context that ends with the test (or after 2 minutes).
func ctxTest(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// natsTestServer starts the embedded NATS server on a random loopback
// port with a temporary store.
func natsTestServer(t testing.TB) *natsd.Server {
	t.Helper()
	srv, err := natsd.Start(ctxTest(t), natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	return srv
}

// natsTestSink is the NATS sink on url, creating the stream.
func natsTestSink(t *testing.T, url string) *natssink.Sink {
	t.Helper()
	s, err := natssink.New(ctxTest(t), natssink.Config{URLs: url, Node: "test", CreateStream: true, ConnectWait: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var (
	templateOnce sync.Once
	templateJSON []byte
)

// killTemplate is a real report as JSON: the first of the pod-limit
// capture, parsed and enriched by `oomscope parse --raw`, raw lines and
// task table included (about 12 KB).
func killTemplate(t testing.TB) []byte {
	t.Helper()
	templateOnce.Do(func() {
		var out, errs bytes.Buffer
		cmd := newRootCmd(strings.NewReader(""), &out, &errs)
		cmd.SetArgs([]string{"parse", "--raw", capturePod})
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("parse: %v: %s", err, errs.String())
		}
		templateJSON, _, _ = bytes.Cut(out.Bytes(), []byte("\n"))
	})
	if templateJSON == nil {
		t.Fatal("no template report")
	}
	return templateJSON
}

// makeKill returns a copy of the template report with the given id, node,
// pod (none when pod is ""), victim and kill time.
func makeKill(t *testing.T, id, node, ns, pod, comm string, pid int, at time.Time) *report.Enriched {
	t.Helper()
	var r report.Enriched
	if err := json.Unmarshal(killTemplate(t), &r); err != nil {
		t.Fatal(err)
	}
	r.ID, r.Host = id, node
	r.First.Wall = &at
	r.Victims[0].Comm, r.Victims[0].PID = comm, pid
	if pod == "" {
		r.Pod, r.Container = nil, nil
	} else {
		r.Pod.Namespace, r.Pod.Name = ns, pod
		r.Container.Name = "app"
	}
	return &r
}

func publishKills(t *testing.T, s *natssink.Sink, rs ...*report.Enriched) {
	t.Helper()
	for _, r := range rs {
		if err := s.Publish(ctxTest(t), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
}

// running is a command running in the background.
type running struct {
	out, errs *syncBuffer
	cancel    context.CancelFunc
	done      chan error
}

// start runs the command line in the background until stop.
func start(t *testing.T, args ...string) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(ctxTest(t))
	r := &running{out: &syncBuffer{}, errs: &syncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	cmd := newRootCmdWith(strings.NewReader(""), r.out, r.errs, kubePodLookup)
	cmd.SetArgs(args)
	go func() { r.done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(cancel)
	return r
}

// waitFor waits until cond holds of the command's output.
func (r *running) waitFor(t *testing.T, what string, cond func(stdout, stderr string) bool) {
	t.Helper()
	end := time.Now().Add(30 * time.Second)
	for !cond(r.out.String(), r.errs.String()) {
		select {
		case err := <-r.done:
			t.Fatalf("command ended (%v) before %s\nstdout:\n%s\nstderr:\n%s", err, what, r.out.String(), r.errs.String())
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("no %s within 30s\nstdout:\n%s\nstderr:\n%s", what, r.out.String(), r.errs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop cancels the command (as Ctrl-C does) and checks that it ends at
// once and without an error.
func (r *running) stop(t *testing.T) {
	t.Helper()
	t0 := time.Now()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("command failed: %v\nstderr:\n%s", err, r.errs.String())
		}
		if d := time.Since(t0); d > time.Second {
			t.Errorf("command took %v to stop", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("command did not stop within 5s of its context ending")
	}
}

// textIDs returns the ids of the post-mortems in text output.
func textIDs(out string) []string {
	var ids []string
	for _, l := range strings.Split(out, "\n") {
		if k, v := textField(l); k == "id" && strings.HasPrefix(l, "  id ") {
			ids = append(ids, v)
		}
	}
	return ids
}

// terminalSafe reports whether s holds no character a terminal acts on
// other than the newlines ending its lines.
func terminalSafe(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return r != '\n' && (r == utf8.RuneError || r == 0x7f || unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp))
	})
}

// TestTailText: tail with --namespace/--pod and --since prints the
// post-mortem of exactly the matching reports, those already in the stream
// and one published after it started; a message that is not a report is
// named on stderr and skipped; cancelling stops it at once.
func TestTailText(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	now := time.Now()
	publishKills(t, s,
		makeKill(t, "k1", "node-1", "shop", "cart", "python3", 101, now),
		makeKill(t, "k2", "node-1", "shop", "front", "node", 102, now),
		makeKill(t, "k3", "node-2", "shop", "cart", "python3", 103, now),
		makeKill(t, "k4", "node-2", "web", "cart", "python3", 104, now),
		makeKill(t, "k5", "node-2", "", "", "dockerd", 105, now),
	)
	tail := start(t, "tail", "--nats-url", srv.ClientURL(), "--namespace", "shop", "--pod", "cart", "--since", "1h")
	tail.waitFor(t, "the earlier reports", func(out, _ string) bool { return len(textIDs(out)) == 2 })
	if errs := tail.errs.String(); !strings.Contains(errs, "following oomscope.v1.kill.*.shop.cart on stream OOMSCOPE") {
		t.Errorf("stderr: %q", errs)
	}

	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctxTest(t), "oomscope.v1.kill.node-3.shop.cart", []byte("hello, not a report")); err != nil {
		t.Fatal(err)
	}
	publishKills(t, s,
		makeKill(t, "k6", "node-3", "shop", "front", "java", 106, now),
		makeKill(t, "k7", "node-3", "shop", "cart", "java", 107, now),
	)
	tail.waitFor(t, "the new report", func(out, _ string) bool { return len(textIDs(out)) == 3 })
	tail.waitFor(t, "the skipped message", func(_, errs string) bool { return strings.Contains(errs, "skipped message") })
	tail.stop(t)

	out := tail.out.String()
	if got := strings.Join(textIDs(out), " "); got != "k1 k3 k7" {
		t.Errorf("ids %q, want k1 k3 k7\n%s", got, out)
	}
	if n := strings.Count(out, "OOM kill (memcg)"); n != 3 {
		t.Errorf("%d post-mortems, want 3", n)
	}
	for _, want := range []string{"  pod         shop/cart, uid 0b7e3c1e", "  killed      java (pid 107)", "on node-3"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if errs := tail.errs.String(); !strings.Contains(errs, "skipped message 6 on oomscope.v1.kill.node-3.shop.cart: not an oomscope report") {
		t.Errorf("stderr: %q", errs)
	}
}

// TestTailJSONNewOnly: without --since tail prints only reports published
// after it started, with -o json one per line as published, and --node
// selects the node exactly.
func TestTailJSONNewOnly(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	now := time.Now()
	publishKills(t, s, makeKill(t, "old", "node-2", "shop", "cart", "python3", 1, now))
	tail := start(t, "tail", "--nats-url", srv.ClientURL(), "--node", "node-2", "-o", "json")
	tail.waitFor(t, "the subscription", func(_, errs string) bool { return strings.Contains(errs, "(new reports;") })
	publishKills(t, s,
		makeKill(t, "n1", "node-2", "shop", "cart", "python3", 2, now),
		makeKill(t, "n2", "node-1", "shop", "cart", "python3", 3, now),
		makeKill(t, "n3", "node_2", "shop", "cart", "python3", 4, now), // same subject token, other node
		makeKill(t, "n4", "node-2", "", "", "kubelet", 5, now),
	)
	tail.waitFor(t, "two reports", func(out, _ string) bool { return strings.Count(out, "\n") >= 2 })
	// n3 comes after n4 in no case: wait a moment for anything extra.
	time.Sleep(200 * time.Millisecond)
	tail.stop(t)
	lines := jsonLines(t, tail.out.String())
	var ids []string
	for _, l := range lines {
		ids = append(ids, fmt.Sprint(l["id"]))
		if l["raw"] == nil || l["schema"] != report.Schema {
			t.Errorf("report %v: not the report as published (raw %v)", l["id"], l["raw"] != nil)
		}
	}
	if got := strings.Join(ids, " "); got != "n1 n4" {
		t.Errorf("ids %q, want n1 n4", got)
	}
}

// TestTailHostileNames: names with line breaks, escape sequences and a
// bidi override print escaped, in text and in JSON: no raw control byte
// reaches the terminal, each text line is a line of the post-mortem and
// each JSON line one report that decodes to the names exactly.
func TestTailHostileNames(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	r := makeKill(t, "evil\x1b[1", "node\u202e-1", "shop", hostilePod, hostileComm, 66, time.Now())
	r.Pod.Labels = map[string]string{"app\n": "x\x1b"}
	publishKills(t, s, r)
	for _, o := range []string{"text", "json"} {
		tail := start(t, "tail", "--nats-url", srv.ClientURL(), "--since", "1h", "-o", o, "--pod", hostilePod)
		tail.waitFor(t, "the report", func(out, _ string) bool { return strings.Contains(out, "\n") && strings.Contains(out, "66") })
		tail.stop(t)
		out := tail.out.String()
		if !terminalSafe(out) || !terminalSafe(tail.errs.String()) {
			t.Errorf("-o %s: raw control characters in the output:\n%q", o, out)
		}
		if o == "json" {
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			var got report.Enriched
			if len(lines) != 1 || json.Unmarshal([]byte(lines[0]), &got) != nil {
				t.Fatalf("-o json: %d lines:\n%s", len(lines), out)
			}
			if got.Victims[0].Comm != hostileComm || got.Pod.Name != hostilePod || got.Host != "node\u202e-1" {
				t.Errorf("-o json changed the names: %q %q %q", got.Victims[0].Comm, got.Pod.Name, got.Host)
			}
			continue
		}
		for _, want := range []string{`evil\n\x1b[2J\u202egpj.exe (pid 66)`, `shop/p\r\nod\x1b]0;owned\x07\u202e`, `on node\u202e-1`, `id          evil\x1b[1`} {
			if !strings.Contains(out, want) {
				t.Errorf("-o text lacks %q:\n%s", want, out)
			}
		}
		for i, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if l != "" && !strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "OOM kill (") {
				t.Errorf("-o text line %d is not a line of the post-mortem: %q", i, l)
			}
		}
	}
}

func TestTailUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"tail", "-o", "yaml"}, `--output "yaml"`},
		{[]string{"tail", "--since", "yesterday"}, `--since "yesterday"`},
		{[]string{"tail", "--nats-token", "a", "--nats-user", "b", "--nats-password", "c"}, "token and user are both set"},
		{[]string{"tail", "--nats-tls-cert", "c.pem"}, "certificate and key files must be set together"},
		{[]string{"tail", "--nats-connect-timeout", "0s"}, "--nats-connect-timeout must be positive"},
	} {
		code, _, errs := run(t, "", c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
	// No server at the default address: one clear line, at once.
	srv := natsTestServer(t)
	url := srv.ClientURL()
	srv.Shutdown()
	t0 := time.Now()
	code, _, errs := run(t, "", "tail", "--nats-url", url)
	if code != 1 || !strings.Contains(errs, "no servers available") || time.Since(t0) > 5*time.Second {
		t.Errorf("no server: exit %d after %v, stderr %q", code, time.Since(t0), errs)
	}
}

// checkHelp checks that `oomscope <name> --help` documents every flag of
// the command.
func checkHelp(t *testing.T, name string) {
	t.Helper()
	code, out, errs := run(t, "", name, "--help")
	if code != 0 {
		t.Fatalf("%s --help: exit %d: %s", name, code, errs)
	}
	cmd, _, err := newRootCmd(nil, nil, nil).Find([]string{name})
	if err != nil || cmd.Name() != name {
		t.Fatalf("no command %s: %v", name, err)
	}
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Usage == "" || !strings.Contains(out, "--"+f.Name+" ") {
			t.Errorf("%s --help does not document --%s", name, f.Name)
		}
	})
}

func TestTailHelp(t *testing.T) { checkHelp(t, "tail") }

func TestTerminalJSON(t *testing.T) {
	in := []byte("{\"a\": \"x\u202ey\u0085z\x7f\u2028\xff\U000e0001\",\n \"b\": [1, 2]}")
	got, err := terminalJSON(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"x\u202ey\u0085z\u007f\u2028\ufffd\udb40\udc01","b":[1,2]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	var a, b map[string]any
	if json.Unmarshal(got, &a) != nil || json.Unmarshal([]byte(strings.ReplaceAll(string(in), "\xff", "\ufffd")), &b) != nil || fmt.Sprint(a) != fmt.Sprint(b) {
		t.Errorf("the value changed: %v vs %v", a, b)
	}
	if _, err := terminalJSON([]byte("{not json")); err == nil {
		t.Error("no error for bad JSON")
	}
}

// TestTailServerRestart: when the server goes away and comes back on the
// same address and store, tail says so on stderr, reconnects and prints
// the reports published after the restart, none twice.
func TestTailServerRestart(t *testing.T) {
	store := t.TempDir()
	srv, err := natsd.Start(ctxTest(t), natsd.Config{Listen: "127.0.0.1:0", StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	url := srv.ClientURL()
	s := natsTestSink(t, url)
	now := time.Now()
	publishKills(t, s, makeKill(t, "before", "node-1", "shop", "cart", "java", 1, now))
	tail := start(t, "tail", "--nats-url", url, "--since", "1h", "-o", "json")
	tail.waitFor(t, "the first report", func(out, _ string) bool { return strings.Count(out, "\n") == 1 })

	srv.Shutdown()
	tail.waitFor(t, "the disconnect", func(_, errs string) bool { return strings.Contains(errs, "NATS disconnected") })
	srv, err = natsd.Start(ctxTest(t), natsd.Config{Listen: strings.TrimPrefix(url, "nats://"), StoreDir: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	tail.waitFor(t, "the reconnect", func(_, errs string) bool { return strings.Contains(errs, "NATS reconnected to "+url) })
	// The sink reconnects on its own schedule: retry as the outbox does.
	after := makeKill(t, "after", "node-1", "shop", "cart", "java", 2, now)
	for end := time.Now().Add(30 * time.Second); ; {
		err := s.Publish(ctxTest(t), sink.Delivery{Report: after, Queued: time.Now()})
		if err == nil {
			break
		}
		if time.Now().After(end) {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	tail.waitFor(t, "the report published after the restart", func(out, _ string) bool { return strings.Count(out, "\n") == 2 })
	time.Sleep(200 * time.Millisecond)
	tail.stop(t)
	var ids []string
	for _, l := range jsonLines(t, tail.out.String()) {
		ids = append(ids, fmt.Sprint(l["id"]))
	}
	if got := strings.Join(ids, " "); got != "before after" {
		t.Errorf("ids %q, want %q", got, "before after")
	}
}
