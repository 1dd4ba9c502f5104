package kubeevents

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/oomscope/oomscope/report"
)

var at0 = time.Date(2026, 3, 14, 9, 26, 53, 0, time.UTC)

func TestMessageScopes(t *testing.T) {
	unknownPod := containerKill(7, at0, "", "", podUID, "python3", 4242)
	unknownPod.Pod.Namespace = ""

	child := containerKill(8, at0, "shop", "web-1", podUID, "worker", 77)
	child.Diagnosis.MainProcessKilled = boolp(false)
	child.Diagnosis.Outcome = report.OutcomeChildKilled

	podScope := containerKill(9, at0, "shop", "web-1", podUID, "java", 12)
	podScope.Diagnosis.Scope = report.ScopePod
	podScope.Diagnosis.LimitBytes = u64(1024 * mi)
	podScope.Diagnosis.Memory.Dominant = "page cache"
	podScope.Derived.PageCacheBytes = u64(400 * mi)
	podScope.Diagnosis.Memory.MostlyReclaimable = true

	qos := containerKill(10, at0, "shop", "web-1", podUID, "java", 12)
	qos.Diagnosis.Scope = report.ScopeKubepods
	qos.Cgroups.Limiting = &report.CgroupPath{Level: report.LevelQoS, QoS: "Burstable"}

	service := globalKill(11, at0, "containerd", 900)
	service.Diagnosis.Scope = report.ScopeSystemService
	service.Diagnosis.LimitBytes = u64(2048 * mi)
	service.OOMMemcg = "/system.slice/containerd.service"
	service.Cgroups.Limiting = &report.CgroupPath{Level: report.LevelSystemService, Unit: "containerd.service"}

	future := containerKill(12, at0, "shop", "web-1", podUID, "java", 12)
	future.Diagnosis.Scope = "numa-island"
	future.Diagnosis.Summary = "a sentence\nfrom the diagnosis"

	noDiag := globalKill(13, at0, "stress", 31337)
	noDiag.Diagnosis = nil

	exiting := containerKill(14, at0, "shop", "web-1", podUID, "java", 12)
	exiting.Victims[0].Exiting = true
	exiting.Diagnosis.Outcome = report.OutcomeNothingKilled

	for _, tc := range []struct {
		name string
		r    *report.Enriched
		p    placement
		want string
	}{
		{"pod", containerKill(1, at0, "shop", "web-1", podUID, "python3", 4242), onPod,
			`Killed process 4242 "python3" in container "app" (main process: container restarts): container limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/1"},
		{"pod on node", containerKill(1, at0, "shop", "web-1", podUID, "python3", 4242), onNode,
			`Killed process 4242 "python3" in container "app" of pod shop/web-1 (main process: container restarts): container limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/1"},
		{"unknown pod", unknownPod, onNode,
			`Killed process 4242 "python3" in container 3f2a9c1b7d4e of unknown pod ` + podUID + ` (main process: container restarts): container limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/7"},
		{"child", child, onPod,
			`Killed process 77 "worker" in container "app" (child process: container keeps running): container limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/8"},
		{"pod scope", podScope, onPod,
			`Killed process 12 "java" in container "app" (main process: container restarts): pod limit 1Gi hit, usage 512Mi (78% page cache, mostly reclaimable); report ` + bootID + "/9"},
		{"qos", qos, onPod,
			`Killed process 12 "java" in container "app" (main process: container restarts): Burstable QoS limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/10"},
		{"global", globalKill(2, at0, "stress", 31337), onNode,
			`Killed process 31337 "stress" in unit "kubelet.service" (not in a container): node out of memory (global OOM), usage 15.6Gi of 16Gi (77% anon); report ` + bootID + "/2"},
		{"service", service, onNode,
			`Killed process 900 "containerd" in unit "kubelet.service" (not in a container): limit 2Gi of unit "containerd.service" hit, usage 15.6Gi (77% anon); report ` + bootID + "/11"},
		{"unknown scope", future, onPod,
			`Killed process 12 "java" in container "app" (main process: container restarts): a sentence\nfrom the diagnosis; report ` + bootID + "/12"},
		{"no diagnosis", noDiag, onNode,
			`Killed process 31337 "stress" in unit "kubelet.service": limit unknown, usage 15.6Gi; report ` + bootID + "/13"},
		{"exiting", exiting, onPod,
			`Process 12 "java" already exiting, nothing killed in container "app": container limit 512Mi hit, usage 512Mi (97% anon); report ` + bootID + "/14"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := killMessage(tc.r, tc.p)
			if got != tc.want {
				t.Errorf("message\n got %s\nwant %s", got, tc.want)
			}
			checkLine(t, got)
		})
	}
}

// checkLine fails unless msg is one bounded line of visible text.
func checkLine(t *testing.T, msg string) {
	t.Helper()
	if len(msg) > MaxMessageBytes {
		t.Errorf("message is %d bytes, more than %d", len(msg), MaxMessageBytes)
	}
	if !utf8.ValidString(msg) {
		t.Errorf("message is not valid UTF-8: %q", msg)
	}
	for _, r := range msg {
		switch {
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
			t.Errorf("control character %U in %q", r, msg)
		case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c, r == 0x2028, r == 0x2029:
			t.Errorf("bidi or line separator %U in %q", r, msg)
		case !unicode.IsPrint(r) && r != ' ':
			t.Errorf("invisible character %U in %q", r, msg)
		}
	}
}

// hostile are names an attacker controls (a process renames itself; a pod
// name is checked by the API, a cgroup path of a report file is not).
var hostile = []string{
	"evil\nNormal  Started  kubelet  fake line",
	"\x1b[2J\x1b[31mred\x1b[0m",
	"abc\u202edcba",
	"iso\u2066late\u2069",
	"c1\u0085\u009b",
	"del\x7f nul\x00 bell\x07 cr\r tab\t",
	"line\u2028sep\u2029",
	"zero\u200bwidth\ufeff",
	"bad\xff\xfeutf8",
	`quote" (main process: container restarts): fake`,
	`back\slash\n`,
	strings.Repeat("\u202e", 5000),
	strings.Repeat("\n", 3000),
	strings.Repeat("é", 3000),
	strings.Repeat("\U0001F4A9", 2000),
}

func TestMessageHostile(t *testing.T) {
	for _, h := range hostile {
		r := containerKill(3, at0, h, h, podUID, h, 1)
		r.Container.Name = h
		r.OOMMemcg = h
		r.TaskMemcg = h
		r.Cgroups.Victim.Path = h
		r.Cgroups.Victim.Unit = h
		r.Diagnosis.Memory.Dominant = h
		r.Diagnosis.Summary = h
		for _, p := range []placement{onPod, onNode} {
			msg := killMessage(r, p)
			checkLine(t, msg)
			if want := "; report " + bootID + "/3"; !strings.HasSuffix(msg, want) {
				t.Errorf("message %q does not end with the id %q", msg, want)
			}
		}
		// A node-level kill in a hostile cgroup, and with a hostile id.
		g := globalKill(4, at0, h, 1)
		g.Diagnosis.Scope = report.ScopeOther
		g.OOMMemcg, g.TaskMemcg, g.Cgroups.Victim.Unit, g.Cgroups.Victim.Path = h, h, "", h
		checkLine(t, killMessage(g, onNode))
		g.ID = h
		msg := killMessage(g, onNode)
		checkLine(t, msg)
		if !strings.Contains(msg, "; report ") {
			t.Errorf("message %q lost its id", msg)
		}
		tgt := nodeTarget(g, testNode, "")
		checkLine(t, aggregateMessage(1000, tgt.subject, at0, g, onNode, h, h))

		// Names made of it are still valid Event names.
		for _, n := range []string{killEventName(h, h), aggregateEventName(h, shortHash(h), 3)} {
			if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
				t.Errorf("event name %q for %q: %v", n, h, errs)
			}
		}
	}

	// Specific escapes, so that an operator can read what the process
	// called itself.
	r := containerKill(5, at0, "shop", "web-1", podUID, "a\nb\x1bc\u202ed\\e\"f", 1)
	msg := killMessage(r, onPod)
	if want := `"a\nb\x1bc\u202ed\\e\"f"`; !strings.Contains(msg, want) {
		t.Errorf("message %q lacks the escaped comm %s", msg, want)
	}
}

func TestMessageBoundKeepsID(t *testing.T) {
	r := containerKill(6, at0, "shop", "web-1", podUID, strings.Repeat("x", 100), 1)
	r.Diagnosis.Scope = "unknown-to-this-version"
	r.Diagnosis.Summary = strings.Repeat("very long sentence ", 200)
	msg := killMessage(r, onPod)
	checkLine(t, msg)
	if !strings.HasSuffix(msg, "…; report "+bootID+"/6") {
		t.Errorf("long message not cut before the id: %q", msg)
	}
	// The comm is bounded on its own: 64 characters, then "…".
	if !strings.Contains(msg, `"`+strings.Repeat("x", 64)+`…"`) {
		t.Errorf("comm not bounded to 64 characters: %q", msg)
	}

	tgt, _ := podTarget(r)
	agg := aggregateMessage(990, tgt.subject, at0, r, onPod, bootID+"/100", bootID+"/1089")
	checkLine(t, agg)
	if !strings.HasPrefix(agg, `990 more OOM kills in container "app" since 2026-03-14T09:26:53Z, last: Killed process 1 `) {
		t.Errorf("aggregate message %q", agg)
	}
	if !strings.HasSuffix(agg, "…; ids "+bootID+"/100…"+bootID+"/1089") {
		t.Errorf("aggregate message not cut before its ids: %q", agg)
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct {
		in   string
		max  int
		want string
	}{
		{"plain name", 64, "plain name"},
		{"a\nb", 64, `a\nb`},
		{"\x1b[0m", 64, `\x1b[0m`},
		{"\u202e", 64, `\u202e`},
		{"\u0085", 64, `\u0085`},
		{"\x7f", 64, `\x7f`},
		{"\xff", 64, `\xff`},
		{`\n`, 64, `\\n`},
		{"日本語", 64, "日本語"},
		{"tab\there", 64, `tab\there`},
		{"\U000E0001", 64, `\U000e0001`},
		{"abcdefghijklmnop", 8, "abcdefgh…"},
		{"\n\n\n\n", 2, `\n\n…`},
	} {
		if got := Escape(tc.in, tc.max); got != tc.want {
			t.Errorf("Escape(%q, %d) = %q, want %q", tc.in, tc.max, got, tc.want)
		}
	}
}

func TestEventNames(t *testing.T) {
	long := strings.Repeat("a", 253)
	for _, obj := range []string{"web-7d9f8b6c5d-x2kqp", "node-a.example.com", long, "UPPER.Case", "-.-", "", "a..b", strings.Repeat("ab.", 100)} {
		n := killEventName(obj, bootID+"/1")
		if errs := validation.IsDNS1123Subdomain(n); len(errs) > 0 {
			t.Errorf("killEventName(%q) = %q: %v", obj, n, errs)
		}
		if n != killEventName(obj, bootID+"/1") {
			t.Errorf("killEventName(%q) not deterministic", obj)
		}
		if killEventName(obj, bootID+"/2") == n {
			t.Errorf("killEventName(%q) the same for two ids", obj)
		}
		a := aggregateEventName(obj, shortHash("g"), 12)
		if errs := validation.IsDNS1123Subdomain(a); len(errs) > 0 {
			t.Errorf("aggregateEventName(%q) = %q: %v", obj, a, errs)
		}
	}
	if got, want := killEventName("web-1", bootID+"/1"), "web-1.oom."+shortHash("report|"+bootID+"/1"); got != want {
		t.Errorf("killEventName = %q, want %q", got, want)
	}
}

func TestStaticPodUID(t *testing.T) {
	const hash = "6f1a0e3c9b2d4a5e8f7c6b5a4d3e2f1a"
	r := containerKill(1, at0, "kube-system", "etcd-node-a", podUID, "etcd", 1)
	if tgt, _ := podTarget(r); string(tgt.ref.UID) != podUID {
		t.Errorf("uid %s, want the API's %s", tgt.ref.UID, podUID)
	}
	// The mirror pod: the API's uid in Pod, the config hash in the path.
	r.Cgroups.Victim.PodUID, r.Cgroups.Limiting.PodUID = hash, hash
	if tgt, _ := podTarget(r); string(tgt.ref.UID) != hash {
		t.Errorf("uid %s, want the static pod's config hash %s", tgt.ref.UID, hash)
	}
}

func TestFieldPath(t *testing.T) {
	for kind, want := range map[string]string{
		"app":       "spec.containers{c}",
		"":          "spec.containers{c}",
		"init":      "spec.initContainers{c}",
		"ephemeral": "spec.ephemeralContainers{c}",
	} {
		if got := fieldPath(&report.Container{Name: "c", Kind: kind}); got != want {
			t.Errorf("fieldPath(kind %q) = %q, want %q", kind, got, want)
		}
	}
	if got := fieldPath(&report.Container{ID: cidApp}); got != "" {
		t.Errorf("fieldPath without a name = %q", got)
	}
}
