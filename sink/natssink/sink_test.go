package natssink

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPublish(t *testing.T) {
	ts := newServer(t, nil)
	reg := prometheus.NewPedanticRegistry()
	cfg := testConfig(t, ts)
	cfg.Registerer = reg
	s := newSink(t, cfg)
	if s.Name() != "nats" {
		t.Errorf("Name = %q", s.Name())
	}
	if s.DuplicateWindow() != DefaultDuplicateWindow {
		t.Errorf("DuplicateWindow = %v", s.DuplicateWindow())
	}
	d := delivery("6f1b6d3c-aaaa/42")
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	// A retry within the window is the server's duplicate, not a second message.
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	_, js := ts.client()
	msgs := readAll(t, js, StreamName)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if m.Subject != "oomscope.v1.kill.node-1.default.memhog-7d9f" {
		t.Errorf("subject %q", m.Subject)
	}
	for k, want := range map[string]string{
		jetstream.MsgIDHeader: "6f1b6d3c-aaaa/42",
		HeaderNode:            "node-1",
		HeaderSchema:          report.Schema,
		HeaderRawOmitted:      "",
	} {
		if got := m.Header.Get(k); got != want {
			t.Errorf("header %s = %q, want %q", k, got, want)
		}
	}
	var back report.Enriched
	if err := json.Unmarshal(m.Data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Schema != report.Schema || back.ID != d.Report.ID || back.Pod == nil || back.Pod.Name != "memhog-7d9f" ||
		len(back.Raw) != 1 || back.Raw[0] != d.Report.Raw[0] {
		t.Errorf("payload does not round-trip: %s", m.Data)
	}
	if got := testutil.ToFloat64(s.pubs.WithLabelValues(OutcomeStored)); got != 1 {
		t.Errorf("stored = %v", got)
	}
	if got := testutil.ToFloat64(s.pubs.WithLabelValues(OutcomeDuplicate)); got != 1 {
		t.Errorf("duplicate = %v", got)
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP oomscope_nats_connected 1 when the NATS sink is connected to a server, 0 otherwise.
# TYPE oomscope_nats_connected gauge
oomscope_nats_connected 1
# HELP oomscope_nats_reconnects_total Reconnections of the NATS sink to a server.
# TYPE oomscope_nats_reconnects_total counter
oomscope_nats_reconnects_total 0
`), "oomscope_nats_connected", "oomscope_nats_reconnects_total"); err != nil {
		t.Error(err)
	}

	for _, bad := range []sink.Delivery{{}, {Report: &report.Enriched{}}, {Report: &report.Enriched{Report: &report.Report{}}}} {
		if err := s.Publish(ctxT(t), bad); err == nil {
			t.Errorf("Publish(%+v) = nil", bad)
		}
	}
	s.Close()
	s.Close()
	if n, err := testutil.GatherAndCount(reg); err != nil || n != 0 {
		t.Errorf("after Close: %d metrics (%v), want none", n, err)
	}
}

// TestDedupeBeyondWindow is the crash between a publish and the outbox
// moving its cursor, retried after the server forgot the id.
func TestDedupeBeyondWindow(t *testing.T) {
	ts := newServer(t, nil)
	cfg := testConfig(t, ts)
	cfg.DuplicateWindow = time.Second
	cfg.DedupeMargin = 500 * time.Millisecond
	reg := prometheus.NewRegistry()
	cfg.Registerer = reg
	s := newSink(t, cfg)
	if s.DuplicateWindow() != time.Second {
		t.Fatalf("window %v", s.DuplicateWindow())
	}
	_, js := ts.client()
	count := func() uint64 {
		st, err := js.Stream(ctxT(t), StreamName)
		if err != nil {
			t.Fatal(err)
		}
		return st.CachedInfo().State.Msgs
	}

	d := delivery("boot/1")
	if s.needsLookup(d.Queued) {
		t.Fatal("a fresh delivery is looked up")
	}
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	// Same delivery, same Queued: the crash happened, the outbox retries.
	if !s.needsLookup(d.Queued) {
		t.Fatal("an old delivery is not looked up")
	}
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d messages after the late retry, want 1", n)
	}
	if got := testutil.ToFloat64(s.pubs.WithLabelValues(OutcomeFound)); got != 1 {
		t.Errorf("found = %v, want 1", got)
	}

	// Old but never published: the lookup finds nothing, it is published once.
	old := sink.Delivery{Report: testReport("boot/2"), Queued: time.Now().Add(-3 * time.Hour)}
	for range 2 {
		if err := s.Publish(ctxT(t), old); err != nil {
			t.Fatal(err)
		}
	}
	if n := count(); n != 2 {
		t.Fatalf("%d messages after the old report, want 2", n)
	}
	// The second attempt was old too: the lookup found the first. Once the
	// server's window is over the lookup must still find it.
	time.Sleep(1500 * time.Millisecond)
	if err := s.Publish(ctxT(t), old); err != nil {
		t.Fatal(err)
	}
	// No Queued time: looked up from the start of the stream.
	if err := s.Publish(ctxT(t), sink.Delivery{Report: testReport("boot/1")}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 2 {
		t.Fatalf("%d messages, want 2", n)
	}
	if got := testutil.ToFloat64(s.pubs.WithLabelValues(OutcomeFound)); got != 4 {
		t.Errorf("found = %v, want 4", got)
	}
	// Another report on the same subject, in the same time range, does not
	// count as this one.
	if err := s.Publish(ctxT(t), sink.Delivery{Report: testReport("boot/3"), Queued: d.Queued}); err != nil {
		t.Fatal(err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d messages, want 3", n)
	}

	// Control: the server alone would have stored the late retry again.
	ack, err := js.Publish(ctxT(t), Subject(d.Report), []byte("{}"), jetstream.WithMsgID("boot/1"))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Duplicate {
		t.Fatal("the server still remembered the id: the test proves nothing")
	}
}

func TestLookupHonoursQueuedTime(t *testing.T) {
	ts := newServer(t, nil)
	cfg := testConfig(t, ts)
	cfg.DuplicateWindow = time.Second
	cfg.DedupeMargin = 500 * time.Millisecond
	cfg.ClockSkew = time.Second
	s := newSink(t, cfg)
	d := delivery("boot/7")
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	// Lookups starting after the message was stored (Queued in the
	// future, beyond the skew margin) do not see it; this shows the start
	// time is applied, and what a clock skew larger than ClockSkew costs.
	found, err := s.lookup(ctxT(t), Subject(d.Report), "boot/7", time.Now().Add(5*time.Second))
	if err != nil || found {
		t.Fatalf("lookup from the future = %v, %v", found, err)
	}
	found, err = s.lookup(ctxT(t), Subject(d.Report), "boot/7", d.Queued)
	if err != nil || !found {
		t.Fatalf("lookup from Queued = %v, %v", found, err)
	}
	found, err = s.lookup(ctxT(t), "oomscope.v1.kill.other._._", "boot/7", d.Queued)
	if err != nil || found {
		t.Fatalf("lookup on another subject = %v, %v", found, err)
	}
}

func TestHostileNames(t *testing.T) {
	ts := newServer(t, nil)
	s := newSink(t, testConfig(t, ts))
	hostile := []string{
		"a.b.c", ">", "*", "a b", "x\r\nPUB oomscope.v1.kill.x.y.z 2\r\nhi\r\n", "\x1b[2J\x1b]0;pwned\x07",
		"\u202Eexe.txt", strings.Repeat("A.", 5*1024), "", "\x00\x01\x7f", "$JS.API.>",
	}
	var reports []*report.Enriched
	for i, h := range hostile {
		r := testReport(bootID(i))
		r.Host = h
		r.Pod.Namespace = hostile[(i+1)%len(hostile)]
		r.Pod.Name = hostile[(i+2)%len(hostile)]
		r.Schema = h // a report from a hostile file could carry anything
		reports = append(reports, r)
		if err := s.Publish(ctxT(t), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	_, js := ts.client()
	msgs := readAll(t, js, StreamName)
	if len(msgs) != len(hostile) {
		t.Fatalf("%d messages, want %d", len(msgs), len(hostile))
	}
	for i, m := range msgs {
		validSubject(t, m.Subject)
		if m.Subject != Subject(reports[i]) {
			t.Errorf("message %d on %q, want %q", i, m.Subject, Subject(reports[i]))
		}
		for k, vs := range m.Header {
			for _, v := range vs {
				if v == "" || len(v) > MaxHeaderLen {
					t.Errorf("message %d: header %s: %d bytes", i, k, len(v))
				}
				for j := 0; j < len(v); j++ {
					if v[j] < 0x20 || v[j] >= 0x7f {
						t.Errorf("message %d: header %s = %q has byte %#x", i, k, v, v[j])
					}
				}
			}
		}
		// The payload keeps the names as they were.
		var back report.Enriched
		if err := json.Unmarshal(m.Data, &back); err != nil {
			t.Fatal(err)
		}
		if back.Host != reports[i].Host || back.Pod.Name != reports[i].Pod.Name {
			t.Errorf("message %d: payload names changed", i)
		}
	}
}

func TestLargeReportOmitsRaw(t *testing.T) {
	ts := newServer(t, func(o *server.Options) { o.MaxPayload = 64 * 1024 })
	s := newSink(t, testConfig(t, ts))
	r := testReport("boot/big")
	r.Raw = nil
	for range 2000 {
		r.Raw = append(r.Raw, strings.Repeat("x", 100))
	}
	if err := s.Publish(ctxT(t), sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if len(r.Raw) != 2000 {
		t.Fatal("Publish modified the report")
	}
	_, js := ts.client()
	msgs := readAll(t, js, StreamName)
	if len(msgs) != 1 || msgs[0].Header.Get(HeaderRawOmitted) != "true" || strings.Contains(string(msgs[0].Data), `"raw"`) {
		t.Fatalf("got %d messages, header %q", len(msgs), msgs[0].Header.Get(HeaderRawOmitted))
	}
}

func TestMissingStream(t *testing.T) {
	ts := newServer(t, nil)
	cfg := testConfig(t, ts)
	cfg.CreateStream = false
	_, err := New(ctxT(t), cfg)
	want := "stream OOMSCOPE not found on " + ts.url() + ": create it or pass --nats-create-stream"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("New = %v, want %q", err, want)
	}
}

func TestWrongStreamSubjects(t *testing.T) {
	ts := newServer(t, nil)
	_, js := ts.client()
	if _, err := js.CreateStream(ctxT(t), jetstream.StreamConfig{Name: StreamName, Subjects: []string{"other.>"}}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, ts)
	cfg.CreateStream = false
	if _, err := New(ctxT(t), cfg); err == nil || !strings.Contains(err.Error(), "not oomscope.v1.>") {
		t.Fatalf("New = %v", err)
	}
	// EnsureStream adds the subjects and keeps the operator's.
	cfg.CreateStream = true
	newSink(t, cfg)
	st, err := js.Stream(ctxT(t), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().Config.Subjects; len(got) != 2 || got[0] != "other.>" || got[1] != StreamSubjects {
		t.Errorf("subjects %q", got)
	}
}

func TestEnsureStream(t *testing.T) {
	ts := newServer(t, nil)
	_, js := ts.client()
	want := StreamConfig(StreamName, time.Minute, time.Hour, 1)
	info, err := EnsureStream(ctxT(t), js, want)
	if err != nil {
		t.Fatal(err)
	}
	c := info.Config
	if c.Name != StreamName || len(c.Subjects) != 1 || c.Subjects[0] != StreamSubjects || c.Storage != jetstream.FileStorage ||
		c.Duplicates != time.Minute || c.MaxAge != time.Hour || c.Retention != jetstream.LimitsPolicy {
		t.Fatalf("created %+v", c)
	}
	// An operator's own limit, and a message, must survive the update.
	c.MaxMsgs = 12345
	if _, err := js.UpdateStream(ctxT(t), c); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctxT(t), "oomscope.v1.kill.n._._", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	// Again through the sink's options: an update.
	cfg := testConfig(t, ts)
	cfg.DuplicateWindow, cfg.MaxAge = 30*time.Second, 2*time.Hour
	s := newSink(t, cfg)
	if s.DuplicateWindow() != 30*time.Second {
		t.Errorf("sink window %v", s.DuplicateWindow())
	}
	st, err := js.Stream(ctxT(t), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	got := st.CachedInfo()
	if got.Config.Duplicates != 30*time.Second || got.Config.MaxAge != 2*time.Hour || got.Config.MaxMsgs != 12345 || got.State.Msgs != 1 {
		t.Errorf("updated: duplicates %v, max age %v, max msgs %d, %d messages",
			got.Config.Duplicates, got.Config.MaxAge, got.Config.MaxMsgs, got.State.Msgs)
	}
	// Nothing to change: no update, same answer.
	if info, err := EnsureStream(ctxT(t), js, StreamConfig(StreamName, 30*time.Second, 2*time.Hour, 1)); err != nil || info.Config.MaxMsgs != 12345 {
		t.Errorf("EnsureStream unchanged = %v", err)
	}
	// Without CreateStream the existing stream's window is read and kept.
	cfg.CreateStream, cfg.DuplicateWindow = false, 5*time.Minute
	if s := newSink(t, cfg); s.DuplicateWindow() != 30*time.Second {
		t.Errorf("window %v, want the stream's", s.DuplicateWindow())
	}
}

func TestConnectFails(t *testing.T) {
	cfg := Config{URLs: "nats://127.0.0.1:" + itoa(freePort(t)), ConnectWait: 300 * time.Millisecond, ReconnectWait: 50 * time.Millisecond}
	start := time.Now()
	_, err := New(ctxT(t), cfg)
	if err == nil || !strings.Contains(err.Error(), "no connection to "+cfg.URLs+" within 300ms") {
		t.Fatalf("New = %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("took %v", el)
	}
}

// TestLookupManyOnSubject scans a subject with more messages than one
// fetch asks for (a crash-looping pod).
func TestLookupManyOnSubject(t *testing.T) {
	ts := newServer(t, nil)
	s := newSink(t, testConfig(t, ts))
	const n = 3*lookupBatch + 20
	begin := time.Now()
	for i := range n {
		if err := s.Publish(ctxT(t), delivery(bootID(i))); err != nil {
			t.Fatal(err)
		}
	}
	subj := Subject(testReport(""))
	from := begin.Add(-time.Second)
	for _, tc := range []struct {
		id   string
		want bool
	}{{bootID(0), true}, {bootID(n / 2), true}, {bootID(n - 1), true}, {"boot/absent", false}} {
		t0 := time.Now()
		found, err := s.lookup(ctxT(t), subj, tc.id, from)
		if err != nil || found != tc.want {
			t.Errorf("lookup %s = %v, %v; want %v", tc.id, found, err, tc.want)
		}
		t.Logf("lookup of %s over %d messages: %v", tc.id, n, time.Since(t0).Round(time.Microsecond))
	}
	// The lookup consumers are gone.
	_, js := ts.client()
	st, err := js.Stream(ctxT(t), StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.CachedInfo().State.Consumers; c != 0 {
		t.Errorf("%d consumers left behind", c)
	}
}

// With the outbox's stored JSON (Delivery.Body), the payload is that JSON
// byte for byte, not the report encoded again; a body too large for the
// server still goes without its raw lines.
func TestPublishStoredBody(t *testing.T) {
	ts := newServer(t, func(o *server.Options) { o.MaxPayload = 64 * 1024 })
	s := newSink(t, testConfig(t, ts))
	d := delivery("6f1b6d3c-bbbb/7")
	body, err := json.Marshal(d.Report)
	if err != nil {
		t.Fatal(err)
	}
	// Stored by an oomscope that wrote one more field: sent as stored.
	d.Body = append([]byte(`{"stored_by":"older",`), body[1:]...)
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	big := testReport("boot/big-stored")
	for range 2000 {
		big.Raw = append(big.Raw, strings.Repeat("y", 100))
	}
	bigBody, err := json.Marshal(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Publish(ctxT(t), sink.Delivery{Report: big, Queued: time.Now(), Body: bigBody}); err != nil {
		t.Fatal(err)
	}
	_, js := ts.client()
	msgs := readAll(t, js, StreamName)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	if string(msgs[0].Data) != string(d.Body) {
		t.Errorf("payload is not the stored body:\n got %s\nwant %s", msgs[0].Data, d.Body)
	}
	if msgs[1].Header.Get(HeaderRawOmitted) != "true" || strings.Contains(string(msgs[1].Data), `"raw"`) {
		t.Errorf("the large stored body went with its raw lines (%d bytes, header %q)", len(msgs[1].Data), msgs[1].Header.Get(HeaderRawOmitted))
	}
}

// TestPublishInProcess: with Config.InProcess the sink reaches the server
// in this process through a pipe (the server lists its connection with no
// TCP address) and publishes as over TCP.
func TestPublishInProcess(t *testing.T) {
	ts := newServer(t, nil)
	cfg := testConfig(t, ts)
	cfg.InProcess = ts.srv
	s := newSink(t, cfg)
	d := delivery("6f1b6d3c-bbbb/7")
	if err := s.Publish(ctxT(t), d); err != nil {
		t.Fatal(err)
	}
	_, js := ts.client()
	if msgs := readAll(t, js, StreamName); len(msgs) != 1 || msgs[0].Header.Get(jetstream.MsgIDHeader) != d.Report.ID {
		t.Fatalf("stream holds %d messages, want the one published", len(msgs))
	}
	cz, err := ts.srv.Connz(&server.ConnzOptions{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cz.Conns {
		if strings.HasPrefix(c.Name, "oomscope") {
			found = true
			if c.IP != "" || c.Port != 0 {
				t.Errorf("the sink's connection is at %s:%d, want the in-process pipe", c.IP, c.Port)
			}
		}
	}
	if !found {
		t.Errorf("the server lists no connection of the sink: %+v", cz.Conns)
	}
}
