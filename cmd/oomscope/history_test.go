package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink/natssink"
)

var cellSep = regexp.MustCompile(`\s{2,}`)

// historyTable splits table output into its rows (header left out) and
// the total line.
func historyTable(t *testing.T, out string) (rows [][]string, total string) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	total = lines[len(lines)-1]
	lines = lines[:len(lines)-1]
	if len(lines) == 0 {
		return nil, total
	}
	if !strings.HasPrefix(lines[0], "TIME ") {
		t.Fatalf("no header:\n%s", out)
	}
	for _, l := range lines[1:] {
		rows = append(rows, cellSep.Split(l, -1))
	}
	return rows, total
}

// fleetKill is one generated kill and what history should show of it.
type fleetKill struct {
	id, node, ns, pod string
	at                time.Time
}

// fleet makes n kills over 4 nodes, 2 namespaces and 5 pods each (every
// seventh one a node-level kill), with kill times that do not follow the
// publishing order.
func fleet(prefix string, n int, base time.Time) []fleetKill {
	ks := make([]fleetKill, n)
	for i := range ks {
		k := fleetKill{
			id:   fmt.Sprintf("%s-%04d", prefix, i),
			node: fmt.Sprintf("node-%d", i%4),
			at:   base.Add(-time.Duration((i*7919)%n) * time.Minute),
		}
		if i%7 != 0 {
			k.ns = []string{"shop", "web"}[i%2]
			k.pod = fmt.Sprintf("pod-%d", i%5)
		}
		ks[i] = k
	}
	return ks
}

func (k fleetKill) report(t *testing.T) *report.Enriched {
	return makeKill(t, k.id, k.node, k.ns, k.pod, "worker", 1000, k.at)
}

// wantRows returns the ids of the kills matching node/ns/pod, by time.
func wantRows(ks []fleetKill, node, ns, pod string) (ids []string, pods, nodes int) {
	var sel []fleetKill
	ps, ns2 := map[string]bool{}, map[string]bool{}
	for _, k := range ks {
		if (node == "" || k.node == node) && (ns == "" || k.ns == ns) && (pod == "" || k.pod == pod) && (ns == "" && pod == "" || k.pod != "") {
			sel = append(sel, k)
			if k.pod != "" {
				ps[k.ns+"/"+k.pod] = true
			}
			ns2[k.node] = true
		}
	}
	slices.SortStableFunc(sel, func(a, b fleetKill) int { return a.at.Compare(b.at) })
	for _, k := range sel {
		ids = append(ids, k.id)
	}
	return ids, len(ps), len(ns2)
}

// TestHistorySinceAndFilters: from a stream of a few hundred reports over
// four nodes and twenty pods, history returns the rows of exactly the
// reports stored since --since that match the filters, sorted by kill
// time, with the right cells and total; -o json prints the same reports
// as published.
func TestHistorySinceAndFilters(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	base := time.Now().Add(-time.Hour).Truncate(time.Second)
	old := fleet("old", 40, base.Add(-48*time.Hour))
	for _, k := range old {
		publishKills(t, s, k.report(t))
	}
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	recent := fleet("new", 300, base)
	for _, k := range recent {
		publishKills(t, s, k.report(t))
	}
	sinceArg := since.Format(time.RFC3339Nano)
	for _, c := range []struct {
		args          []string
		kills         []fleetKill
		node, ns, pod string
	}{
		{[]string{"--since", sinceArg}, recent, "", "", ""},
		{[]string{"--since", sinceArg, "--namespace", "shop"}, recent, "", "shop", ""},
		{[]string{"--since", sinceArg, "--node", "node-2", "--namespace", "shop", "--pod", "pod-4"}, recent, "node-2", "shop", "pod-4"},
		{[]string{"--since", sinceArg, "--pod", "pod-1"}, recent, "", "", "pod-1"},
		// The default --since 24h: the old reports' kills are 48 h old, but
		// they were stored now.
		{[]string{"--node", "node-3"}, append(slices.Clone(old), recent...), "node-3", "", ""},
		{[]string{"--since", "7d"}, append(slices.Clone(old), recent...), "", "", ""},
		{[]string{"--since", sinceArg, "--namespace", "nowhere"}, recent, "", "nowhere", ""},
	} {
		args := append([]string{"history", "--nats-url", srv.ClientURL()}, c.args...)
		code, out, errs := run(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", c.args, code, errs)
		}
		rows, total := historyTable(t, out)
		ids, pods, nodes := wantRows(c.kills, c.node, c.ns, c.pod)
		var got []string
		for _, r := range rows {
			if len(r) != len(historyColumns) {
				t.Fatalf("%v: row %q has %d cells", c.args, r, len(r))
			}
			got = append(got, r[len(r)-1])
		}
		if !slices.Equal(got, ids) {
			t.Errorf("%v: %d rows %v…, want %d %v…", c.args, len(got), got[:min(5, len(got))], len(ids), ids[:min(5, len(ids))])
		}
		plural := func(n int, w string) string {
			if n == 1 {
				return fmt.Sprintf("%d %s", n, w)
			}
			return fmt.Sprintf("%d %ss", n, w)
		}
		if want := plural(len(ids), "kill") + ", " + plural(pods, "pod") + ", " + plural(nodes, "node"); total != want {
			t.Errorf("%v: total %q, want %q", c.args, total, want)
		}
	}

	// The cells of one row.
	_, out, _ := run(t, "", "history", "--nats-url", srv.ClientURL(), "--since", sinceArg, "--node", "node-1", "--pod", "pod-1", "--namespace", "web")
	rows, _ := historyTable(t, out)
	k := recent[1]
	want := []string{k.at.Local().Format(time.DateTime), "node-1", "web/pod-1/app", "worker 1000", "pod", "96Mi", "child", k.id}
	if i := slices.IndexFunc(rows, func(r []string) bool { return r[len(r)-1] == k.id }); i < 0 || !slices.Equal(rows[i], want) {
		t.Errorf("rows %q, want one %q", rows, want)
	}
	// A node-level kill.
	_, out, _ = run(t, "", "history", "--nats-url", srv.ClientURL(), "--since", sinceArg, "--node", "node-0")
	rows, _ = historyTable(t, out)
	var nodeLevel []string
	for _, r := range rows {
		if r[len(r)-1] == recent[0].id {
			nodeLevel = r
		}
	}
	if len(nodeLevel) < 3 || nodeLevel[2] != "-" {
		t.Errorf("node-level kill row %q", nodeLevel)
	}

	// -o json: the reports as published, in the same order.
	code, out, errs := run(t, "", "history", "--nats-url", srv.ClientURL(), "--since", sinceArg, "--namespace", "web", "-o", "json")
	if code != 0 {
		t.Fatalf("-o json: exit %d: %s", code, errs)
	}
	var got []string
	for _, l := range jsonLines(t, out) {
		got = append(got, fmt.Sprint(l["id"]))
		if l["raw"] == nil {
			t.Errorf("-o json: report %v without its raw lines", l["id"])
		}
	}
	ids, _, _ := wantRows(recent, "", "web", "")
	if !slices.Equal(got, ids) {
		t.Errorf("-o json: %d reports, want %d", len(got), len(ids))
	}
	if !strings.Contains(errs, fmt.Sprintf("%d kills, ", len(ids))) {
		t.Errorf("-o json: no total on stderr: %q", errs)
	}
}

// TestHistoryHostileNames: one table row per report whatever its names
// hold, no raw control character in the output, long names cut; a message
// that is not a report is named on stderr and skipped.
func TestHistoryHostileNames(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	now := time.Now()
	publishKills(t, s,
		makeKill(t, "h1", "node\n1", "shop\x1b[31m", hostilePod, hostileComm, 1, now),
		makeKill(t, "h2\r\nfake row", "node-2", "shop", strings.Repeat("\u202e", 300), "ok", 2, now.Add(time.Second)),
		makeKill(t, "h3", "node-3", "web", "plain", strings.Repeat("x", 5000), 3, now.Add(2*time.Second)),
	)
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctxTest(t), "oomscope.v1.kill.x.y.z", []byte(`{"schema":"something/else","id":"1"}`)); err != nil {
		t.Fatal(err)
	}
	code, out, errs := run(t, "", "history", "--nats-url", srv.ClientURL())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !terminalSafe(out) || !terminalSafe(errs) {
		t.Errorf("raw control characters:\n%q\n%q", out, errs)
	}
	rows, total := historyTable(t, out)
	if len(rows) != 3 || total != "3 kills, 3 pods, 3 nodes" {
		t.Fatalf("%d rows, total %q:\n%s", len(rows), total, out)
	}
	if rows[0][1] != `node\n1` || !strings.HasPrefix(rows[0][2], `shop\x1b[31m/p\r\nod\x1b]0;owned\x07\u202e`) || !strings.HasPrefix(rows[0][3], `evil\n\x1b[2J\u202egpj.exe 1`) {
		t.Errorf("row 1: %q", rows[0])
	}
	if rows[1][7] != `h2\r\nfake row` {
		t.Errorf("row 2 id: %q", rows[1][7])
	}
	for i, r := range rows {
		for j, c := range r {
			if len(c) > historyColumns[j].max {
				t.Errorf("row %d cell %d: %d bytes, more than %d", i, j, len(c), historyColumns[j].max)
			}
		}
	}
	if !strings.Contains(errs, `skipped message 4 on oomscope.v1.kill.x.y.z: not an oomscope report: schema "something/else"`) {
		t.Errorf("stderr %q", errs)
	}
}

// TestHistoryBrokenPayload: the table reads only the keys it shows, so a
// payload broken elsewhere is still a row; -o json validates each payload
// and skips a broken one, naming it on stderr.
func TestHistoryBrokenPayload(t *testing.T) {
	srv := natsTestServer(t)
	s := natsTestSink(t, srv.ClientURL())
	publishKills(t, s, makeKill(t, "good", "node-1", "shop", "cart", "java", 1, time.Now()))
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	if _, err := js.Publish(ctxTest(t), "oomscope.v1.kill.node-1.shop.cart", []byte(`{"schema":"oomscope.report/v1","id":"broken","raw":[1 2]}`)); err != nil {
		t.Fatal(err)
	}
	_, out, _ := run(t, "", "history", "--nats-url", srv.ClientURL())
	if rows, total := historyTable(t, out); len(rows) != 2 || total != "2 kills, 1 pod, 1 node" {
		t.Errorf("table: %q", out)
	}
	code, out, errs := run(t, "", "history", "--nats-url", srv.ClientURL(), "-o", "json")
	if lines := jsonLines(t, out); code != 0 || len(lines) != 1 || lines[0]["id"] != "good" {
		t.Errorf("-o json: exit %d:\n%s", code, out)
	}
	if !strings.Contains(errs, "skipped message 2 on oomscope.v1.kill.node-1.shop.cart: not an oomscope report: invalid character '2'") || !strings.Contains(errs, "1 kill, 1 pod, 1 node") {
		t.Errorf("-o json stderr: %q", errs)
	}
}

// publishMany fills a stream with n copies of the template report (about
// 12 KB each, raw lines included) over 50 nodes and 500 pods, published
// asynchronously as the sink would (subject, Nats-Msg-Id, payload).
func publishMany(tb testing.TB, url string, n int, tmpl []byte) {
	tb.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		tb.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(512))
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := natssink.EnsureStream(ctx, js, natssink.StreamConfig(natssink.StreamName, time.Minute, 0, 1)); err != nil {
		tb.Fatal(err)
	}
	var r report.Enriched
	if err := json.Unmarshal(tmpl, &r); err != nil {
		tb.Fatal(err)
	}
	base := time.Now().Add(-time.Hour)
	for i := range n {
		r.ID = fmt.Sprintf("bench/%05d", i)
		r.Host = fmt.Sprintf("node-%02d", i%50)
		r.Pod.Namespace, r.Pod.Name = fmt.Sprintf("ns-%d", i%10), fmt.Sprintf("pod-%03d", i%500)
		at := base.Add(time.Duration(i) * time.Millisecond)
		r.First.Wall = &at
		data, err := json.Marshal(&r)
		if err != nil {
			tb.Fatal(err)
		}
		msg := &nats.Msg{Subject: natssink.Subject(&r), Header: nats.Header{}, Data: data}
		msg.Header.Set(jetstream.MsgIDHeader, r.ID)
		if _, err := js.PublishMsgAsync(msg, jetstream.WithStallWait(30*time.Second)); err != nil {
			tb.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		tb.Fatal("publishing timed out")
	}
}

// TestHistory10k: history answers from a stream of 10,000 reports of
// about 12 KB in a few seconds: within 5 s here (the server runs in the
// test process, on the same two cores), 60 s under the race detector,
// which instruments the server too (BenchmarkHistory10k gives the figure).
func TestHistory10k(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 120 MB")
	}
	srv := natsTestServer(t)
	publishMany(t, srv.ClientURL(), 10000, killTemplate(t))
	t0 := time.Now()
	code, out, errs := run(t, "", "history", "--nats-url", srv.ClientURL())
	d := time.Since(t0)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	rows, total := historyTable(t, out)
	if len(rows) != 10000 || total != "10000 kills, 500 pods, 50 nodes" {
		t.Errorf("%d rows, total %q", len(rows), total)
	}
	t.Logf("history of 10,000 reports (%d bytes of output): %v", len(out), d)
	if limit := map[bool]time.Duration{false: 5 * time.Second, true: time.Minute}[raceEnabled]; d > limit {
		t.Errorf("history took %v, more than %v", d, limit)
	}
	code, out, _ = run(t, "", "history", "--nats-url", srv.ClientURL(), "--namespace", "ns-3", "--pod", "pod-013")
	if rows, total := historyTable(t, out); code != 0 || len(rows) != 20 || total != "20 kills, 1 pod, 1 node" {
		t.Errorf("filtered: exit %d, %d rows, total %q", code, len(rows), total)
	}
}

// BenchmarkHistory10k measures `oomscope history` (connect, read, decode,
// sort, table) over a stream of 10,000 reports of about 12 KB:
//
//	go test -run '^$' -bench History10k -benchtime 5x ./cmd/oomscope
func BenchmarkHistory10k(b *testing.B) {
	srv := natsTestServer(b)
	publishMany(b, srv.ClientURL(), 10000, killTemplate(b))
	b.ResetTimer()
	for b.Loop() {
		var o, e bytes.Buffer
		cmd := newRootCmd(strings.NewReader(""), &o, &e)
		cmd.SetArgs([]string{"history", "--nats-url", srv.ClientURL()})
		if err := cmd.ExecuteContext(context.Background()); err != nil {
			b.Fatal(err, e.String())
		}
		if !strings.HasSuffix(o.String(), "10000 kills, 500 pods, 50 nodes\n") {
			b.Fatal("wrong total")
		}
	}
}

func TestHistoryUsage(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"history", "-o", "text"}, `--output "text"`},
		{[]string{"history", "--since", "-2h"}, "positive duration"},
		{[]string{"history", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"history", "--nats-nkey", "a", "--nats-creds", "b"}, "creds file and nkey seed file are both set"},
	} {
		code, _, errs := run(t, "", c.args...)
		if code != 2 || !strings.Contains(errs, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, code, errs, c.want)
		}
	}
}

func TestHistoryHelp(t *testing.T) { checkHelp(t, "history") }

// TestDecodeHistoryReport: the member-by-member decoder reads the same
// fields encoding/json does, across escaped quotes, backslashes, nested
// brackets in strings and escaped keys, and refuses what is not a report.
func TestDecodeHistoryReport(t *testing.T) {
	r := makeKill(t, `id"\`, "n\\\"ode", "ns", `p{o[d"]}`, "c\\", 7, time.Now())
	r.Raw = append(r.Raw, `"quoted" \"x\" {[`, `\`)
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeHistoryReport(data)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != r.ID || got.Host != r.Host || got.Pod.Name != r.Pod.Name || got.Victims[0].Comm != r.Victims[0].Comm ||
		got.Scope != r.Diagnosis.Scope || *got.LimitBytes != *r.Diagnosis.LimitBytes || *got.MainProcessKilled != *r.Diagnosis.MainProcessKilled ||
		!got.First.Wall.Equal(*r.First.Wall) || got.Memory.LimitBytes != r.Memory.LimitBytes {
		t.Errorf("decoded %+v", got)
	}
	esc, err := decodeHistoryReport([]byte(` {"\u0073chema" : "oomscope.report/v1", "id":"x", "diagnosis": null, "n": [1, {"a": "]"}], "t": true} `))
	if err != nil || esc.ID != "x" || esc.Scope != "" {
		t.Errorf("escaped key, null diagnosis: %+v, %v", esc, err)
	}
	for _, bad := range []string{
		``, `[]`, `"x"`, `{`, `{"schema":"oomscope.report/v1","id":"x"`, `{"schema":"oomscope.report/v1","id":"x"}}`,
		`{"schema":"oomscope.report/v1","id":"x","raw":["cut]}`, `{"schema":"oomscope.report/v1","id":}`,
		`{"schema":"oomscope.report/v1" "id":"x"}`, `{"schema":"oomscope.report/v1","id":"x","pod":{"name":1}}`,
		`{"schema":"oomscope.report/v2","id":"x"}`, `{"schema":"oomscope.report/v1"}`, `{"id":"x"}`,
	} {
		if _, err := decodeHistoryReport([]byte(bad)); err == nil {
			t.Errorf("decodeHistoryReport(%q) succeeded", bad)
		}
	}
}

// FuzzDecodeHistoryReport: any bytes decode or fail without a panic, and
// a report with fuzzed names decodes to those names.
func FuzzDecodeHistoryReport(f *testing.F) {
	f.Add([]byte(`{"schema":"oomscope.report/v1","id":"a\"b","raw":["}"]}`), "evil\n\x1b", `p"\`, "n\u202e")
	f.Add([]byte(`{"a":[{"b":"\\"}]}`), "", "", "")
	f.Fuzz(func(t *testing.T, data []byte, comm, pod, node string) {
		_, _ = decodeHistoryReport(data)
		r := &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "id" + comm, Host: node,
			Victims: []report.Victim{{Comm: comm, PID: 1}}, Raw: []string{comm + pod, string(data)}},
			Pod: &report.Pod{Namespace: pod, Name: pod + comm}}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var want historyReport
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeHistoryReport(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if got.ID != want.ID || got.Host != want.Host || got.Victims[0].Comm != want.Victims[0].Comm ||
			got.Pod.Namespace != want.Pod.Namespace || got.Pod.Name != want.Pod.Name {
			t.Errorf("%s: decoded %+v, want %+v", b, got, want)
		}
	})
}
