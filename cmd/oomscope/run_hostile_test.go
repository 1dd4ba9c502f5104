package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/oomscope/oomscope/natsd"
)

// runHostileComm is a process name a workload can give itself (15 bytes, as
// prctl allows): a newline, an OSC window-title sequence and a bidi
// override. In a raw /dev/kmsg dump the kernel writes these bytes as \xNN.
const runHostileComm = "x\n\x1b]0;pwn\x07\u202e"

// kmsgEscape writes s as /dev/kmsg escapes bytes outside printable ASCII.
func kmsgEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '\\' {
			b.WriteString(`\x`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// rawUnsafe reports the first control character (other than \n, \t at
// line ends) or bidi control in s.
func rawUnsafe(s string) (rune, bool) {
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return r, true
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f:
			return r, true
		case !unicode.IsPrint(r) && !unicode.IsSpace(r):
			return r, true
		}
	}
	return 0, false
}

// TestRunHostileNames feeds a log whose victim and trigger are named with
// control and bidi characters (and whose cgroup path holds an escape
// sequence) through `run --source`, to the JSON and text outputs, the
// console log, the archive and NATS: no output carries the raw bytes, and
// none shows more reports than there are.
func TestRunHostileNames(t *testing.T) {
	raw, err := os.ReadFile("../../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.ReplaceAll(string(raw), "python3", kmsgEscape(runHostileComm))
	text = strings.ReplaceAll(text, "/test-runner/", "/"+kmsgEscape("t\x1b[31m\u202er")+"/")
	log := filepath.Join(t.TempDir(), "hostile.kmsg")
	if err := os.WriteFile(log, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := natsd.Start(ctx, natsd.Config{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()

	for _, output := range []string{"json", "text"} {
		t.Run(output, func(t *testing.T) {
			state := t.TempDir()
			c := runConfig{
				Source: log, StateDir: state, Host: "node-a", MaxTasks: 100, LogLevel: zerolog.InfoLevel, LogFormat: "console",
				Kubeconfig: "none", NATSURL: srv.ClientURL(), NATSCreate: true, DrainTimeout: 30 * time.Second,
				CgroupRoot: "/nonexistent", ProcRoot: "/proc", Stdout: true, Output: output,
			}
			var out, errb bytes.Buffer
			if err := runDaemon(ctx, &out, &errb, c); err != nil {
				t.Fatalf("run: %v\n%s", err, errb.String())
			}
			if r, bad := rawUnsafe(errb.String()); bad {
				t.Errorf("the console log carries raw %U:\n%s", r, errb.String())
			}
			if n := strings.Count(errb.String(), "published OOM report"); n != 3 {
				t.Errorf("the log shows %d published reports, want 3", n)
			}
			if r, bad := rawUnsafe(out.String()); bad {
				t.Errorf("-o %s output carries raw %U:\n%s", output, r, out.String())
			}
			if output == "json" {
				n := 0
				sc := bufio.NewScanner(&out)
				sc.Buffer(nil, 16<<20)
				for sc.Scan() {
					var m map[string]any
					if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
						t.Errorf("line %d is not JSON: %v", n+1, err)
					}
					n++
				}
				if n != 3 {
					t.Errorf("%d JSON lines, want 3", n)
				}
			}
			files, _ := filepath.Glob(filepath.Join(state, "archive", "files", "*.json"))
			if len(files) != 3 {
				t.Errorf("archive holds %d files, want 3", len(files))
			}
			for _, f := range files {
				b, _ := os.ReadFile(f)
				var m struct {
					Victims []struct{ Comm string } `json:"victims"`
				}
				if err := json.Unmarshal(b, &m); err != nil {
					t.Errorf("%s: %v", f, err)
				} else if len(m.Victims) != 1 || m.Victims[0].Comm != runHostileComm {
					t.Errorf("%s: victims %q, want the real name kept exactly (escaped by JSON)", f, m.Victims)
				}
			}
		})
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	cons, err := js.OrderedConsumer(ctx, "OOMSCOPE", jetstream.OrderedConsumerConfig{HeadersOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	batch, err := cons.Fetch(10, jetstream.FetchMaxWait(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for m := range batch.Messages() {
		n++
		if toks := strings.Split(m.Subject(), "."); len(toks) != 6 || strings.Join(toks[:3], ".") != "oomscope.v1.kill" {
			t.Errorf("subject %q: want oomscope.v1.kill.<node>.<namespace>.<pod>", m.Subject())
		}
		for k, vs := range m.Headers() {
			for _, v := range vs {
				if r, bad := rawUnsafe(v); bad || strings.ContainsAny(v, "\r\n") {
					t.Errorf("header %s=%q carries %U", k, v, r)
				}
			}
		}
	}
	if n != 3 {
		t.Errorf("%d NATS messages, want 3 (two runs of the same log publish each report once)", n)
	}
}
