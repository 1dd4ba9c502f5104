package natssink

import (
	"strings"
	"testing"

	"github.com/oomscope/oomscope/report"
)

func enriched(host string, pod *report.Pod) *report.Enriched {
	return &report.Enriched{Report: &report.Report{Schema: report.Schema, ID: "b/1", Host: host}, Pod: pod}
}

// validSubject checks what the NATS server requires of a literal subject
// and what Subject promises: six non-empty tokens of printable ASCII
// without wildcards, each at most MaxTokenLen bytes.
func validSubject(t *testing.T, subj string) {
	t.Helper()
	toks := strings.Split(subj, ".")
	if len(toks) != 6 {
		t.Fatalf("subject %q has %d tokens, want 6", subj, len(toks))
	}
	if strings.Join(toks[:3], ".") != "oomscope.v1.kill" {
		t.Fatalf("subject %q: wrong prefix", subj)
	}
	for _, tok := range toks {
		if tok == "" || len(tok) > MaxTokenLen {
			t.Fatalf("subject %q: token %q empty or longer than %d", subj, tok, MaxTokenLen)
		}
		if tok == "*" || tok == ">" {
			t.Fatalf("subject %q: wildcard token", subj)
		}
		for i := 0; i < len(tok); i++ {
			if c := tok[i]; c <= ' ' || c >= 0x7f || c == '*' || c == '>' {
				t.Fatalf("subject %q: byte %#x in token %q", subj, c, tok)
			}
		}
	}
}

func TestSubject(t *testing.T) {
	long := strings.Repeat("a", 10*1024)
	long2 := strings.Repeat("a", 10*1024-1) + "b"
	cut := strings.Repeat("a", MaxTokenLen-1-hashLen) + "-"
	for _, tc := range []struct {
		name string
		r    *report.Enriched
		want string // "" to check validity only
	}{
		{"pod", enriched("node-1", &report.Pod{Namespace: "default", Name: "web-0"}), "oomscope.v1.kill.node-1.default.web-0"},
		{"node level", enriched("node-1", nil), "oomscope.v1.kill.node-1._._"},
		{"unknown node", enriched("", nil), "oomscope.v1.kill._._._"},
		{"node from pod", enriched("", &report.Pod{Namespace: "ns", Name: "p", Node: "n7"}), "oomscope.v1.kill.n7.ns.p"},
		{"pod known by uid only", enriched("n", &report.Pod{UID: "0b7c3d2e-1111"}), "oomscope.v1.kill.n._.0b7c3d2e-1111"},
		{"empty pod record", enriched("n", &report.Pod{}), "oomscope.v1.kill.n._._"},
		{"nil report", nil, "oomscope.v1.kill._._._"},
		{"nil inner report", &report.Enriched{}, "oomscope.v1.kill._._._"},
		{"fqdn node", enriched("ip-10-0-0-1.ec2.internal", nil), "oomscope.v1.kill.ip-10-0-0-1_ec2_internal._._"},
		{"dots", enriched("a.b.c", &report.Pod{Namespace: "x.y", Name: ".."}), "oomscope.v1.kill.a_b_c.x_y.__"},
		{"full wildcard", enriched(">", &report.Pod{Namespace: ">", Name: "a>b"}), "oomscope.v1.kill._._.a_b"},
		{"token wildcard", enriched("*", &report.Pod{Namespace: "*.*", Name: "a*"}), "oomscope.v1.kill._.___.a_"},
		{"spaces", enriched("a b", &report.Pod{Namespace: " ", Name: "\tx\v"}), "oomscope.v1.kill.a_b._._x_"},
		{"newlines", enriched("a\r\nPUB x 1\r\n", &report.Pod{Namespace: "\n", Name: "p\n"}), "oomscope.v1.kill.a__PUB_x_1__._.p_"},
		{"escape", enriched("\x1b[31mred", &report.Pod{Namespace: "\x00", Name: "\x7f"}), "oomscope.v1.kill._[31mred._._"},
		{"bidi override", enriched("abc\u202Egpj.exe", &report.Pod{Namespace: "ns", Name: "\u202E"}), "oomscope.v1.kill.abc___gpj_exe.ns.___"},
		{"utf-8", enriched("nœud", nil), "oomscope.v1.kill.n__ud._._"},
		{"10 KB", enriched(long, &report.Pod{Namespace: long, Name: long}), ""},
		{"10 KB of dots", enriched(strings.Repeat(".", 10*1024), &report.Pod{Namespace: strings.Repeat(">", 10*1024), Name: strings.Repeat("\n", 10*1024)}), ""},
		{"exactly max", enriched(strings.Repeat("n", MaxTokenLen), nil), "oomscope.v1.kill." + strings.Repeat("n", MaxTokenLen) + "._._"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Subject(tc.r)
			validSubject(t, got)
			if tc.want != "" && got != tc.want {
				t.Errorf("Subject = %q, want %q", got, tc.want)
			}
		})
	}

	t.Run("long names stay distinct", func(t *testing.T) {
		a, b := Token(long), Token(long2)
		if a == b {
			t.Fatalf("Token(long) = Token(long2) = %q", a)
		}
		if len(a) != MaxTokenLen || !strings.HasPrefix(a, cut) {
			t.Errorf("Token(long) = %q (%d bytes), want %q + 10 hex digits", a, len(a), cut)
		}
		if Token(long) != a {
			t.Error("Token is not deterministic")
		}
	})
	t.Run("one more than max is cut", func(t *testing.T) {
		if got := Token(strings.Repeat("n", MaxTokenLen+1)); len(got) != MaxTokenLen {
			t.Errorf("len = %d", len(got))
		}
	})
}

func TestHeaderValue(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"node-1", "node-1"},
		{"", "_"},
		{"a\r\nNats-Msg-Id: x", "a__Nats-Msg-Id:_x"},
		{"\x1b]0;title\x07", "_]0;title_"},
		{"\u202Eabc", "___abc"},
		{"oomscope.report/v1", "oomscope.report/v1"},
	} {
		if got := HeaderValue(tc.in); got != tc.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := HeaderValue(strings.Repeat("\n", 10*1024)); len(got) != MaxHeaderLen || strings.ContainsAny(got, "\r\n") {
		t.Errorf("HeaderValue(10 KB of newlines) = %q", got)
	}
	if got := msgID("sha256:" + strings.Repeat("ab", 32)); got != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("msgID changed a sha256 id: %q", got)
	}
}

func FuzzSubject(f *testing.F) {
	f.Add("node", "ns", "pod")
	f.Add("a.b", ">", "*")
	f.Add("\u202E", "\r\n", "")
	f.Fuzz(func(t *testing.T, node, ns, pod string) {
		validSubject(t, Subject(enriched(node, &report.Pod{Namespace: ns, Name: pod})))
	})
}
