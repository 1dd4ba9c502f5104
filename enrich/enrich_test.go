package enrich

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oomscope/oomscope/enrich/procattr"
	"github.com/oomscope/oomscope/internal/fixtures"
	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/report"
)

// lateLookup finds the pod only from its n-th call on.
type lateLookup struct {
	n     int32
	calls atomic.Int32
	err   error
}

func (l *lateLookup) Lookup(ctx context.Context, uid, cid string) (*report.Pod, *report.Container, error) {
	if l.calls.Add(1) < l.n {
		return nil, nil, l.err
	}
	return &report.Pod{Namespace: "shop", Name: "cart-0", UID: uid, QoSClass: report.QoSGuaranteed, Owner: &report.Owner{Kind: "StatefulSet", Name: "cart"}},
		&report.Container{Name: "cart", ID: cid, Image: "cart:1", Kind: "app", RestartCount: new(int32(1))}, nil
}

func TestNewOptions(t *testing.T) {
	for name, o := range map[string]Option{
		"negative wait": WithLookupWait(-time.Second),
		"empty cgroup":  WithCgroupRoot(""),
		"empty proc":    WithProcRoot(""),
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestEnrichFromPathOnly(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := fixtures.Memcg(fixtures.V2PodPath, fixtures.V2CtrPath, 256, nil, nil, fixtures.Victim(1, "app", 900))
	er := e.Enrich(context.Background(), r)
	if er.Pod == nil || er.Pod.UID != fixtures.PodUID || er.Pod.QoSClass != report.QoSBurstable || er.Pod.Name != "" {
		t.Errorf("pod = %+v", er.Pod)
	}
	if er.Container == nil || er.Container.ID != fixtures.CID || er.Container.Runtime != report.RuntimeContainerd {
		t.Errorf("container = %+v", er.Container)
	}
	if er.Cgroups.Limiting.Level != report.LevelPod || er.Cgroups.Victim.Level != report.LevelContainer {
		t.Errorf("cgroups = %+v", er.Cgroups)
	}
	if er.Snapshot != nil || er.MissedKills != nil || len(er.Enrichment.Errors) != 0 {
		t.Errorf("snapshot %v, missed %v, errors %v: want none from the path alone", er.Snapshot, er.MissedKills, er.Enrichment.Errors)
	}
	if got := strings.Join(er.Enrichment.Sources, ","); got != SourceCgroupPath {
		t.Errorf("sources = %s", got)
	}
	if e.Enrich(context.Background(), nil).Enrichment.Errors == nil {
		t.Error("nil report: no error recorded")
	}
}

func TestEnrichLookup(t *testing.T) {
	tests := []struct {
		name       string
		lookup     *lateLookup
		wait       time.Duration
		wantName   string
		wantErr    string
		wantSource bool
	}{
		{"found at once", &lateLookup{n: 1}, 0, "cart-0", "", true},
		{"found after retries", &lateLookup{n: 3}, 2 * time.Second, "cart-0", "", true},
		{"not found within the wait", &lateLookup{n: 1000}, 250 * time.Millisecond, "", "is not known to the Kubernetes API", false},
		{"lookup error", &lateLookup{n: 1000, err: errors.New("apiserver down")}, time.Second, "", "apiserver down", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := New(WithPodLookup(tt.lookup), WithLookupWait(tt.wait))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			er := e.Enrich(context.Background(), fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, fixtures.Victim(1, "app", -997)))
			if el := time.Since(start); el > tt.wait+time.Second {
				t.Errorf("took %v, wait %v", el, tt.wait)
			}
			name := ""
			if er.Pod != nil {
				name = er.Pod.Name
			}
			if name != tt.wantName {
				t.Errorf("pod name %q, want %q", name, tt.wantName)
			}
			errs := strings.Join(er.Enrichment.Errors, "|")
			if (tt.wantErr == "") != (errs == "") || !strings.Contains(errs, tt.wantErr) {
				t.Errorf("errors %q, want %q", errs, tt.wantErr)
			}
			has := strings.Contains(strings.Join(er.Enrichment.Sources, ","), SourceKubernetesAPI)
			if has != tt.wantSource {
				t.Errorf("sources %v", er.Enrichment.Sources)
			}
			if tt.wantName != "" {
				// The path's facts stay; the API's are added.
				if er.Container.Name != "cart" || er.Container.Runtime != report.RuntimeContainerd || er.Pod.QoSClass != report.QoSGuaranteed {
					t.Errorf("container %+v pod %+v", er.Container, er.Pod)
				}
				if !strings.HasPrefix(er.Diagnosis.Summary, `container "cart" of shop/cart-0 (Guaranteed): `) {
					t.Errorf("summary %q", er.Diagnosis.Summary)
				}
			}
		})
	}
}

func TestEnrichLookupCancelled(t *testing.T) {
	e, err := New(WithPodLookup(&lateLookup{n: 1 << 30}), WithLookupWait(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	er := e.Enrich(ctx, fixtures.Memcg(fixtures.V2CtrPath, fixtures.V2CtrPath, 256, nil, nil, fixtures.Victim(1, "app", 900)))
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("Enrich took %v after its context ended", el)
	}
	if !strings.Contains(strings.Join(er.Enrichment.Errors, "|"), context.DeadlineExceeded.Error()) {
		t.Errorf("errors %v", er.Enrichment.Errors)
	}
}

func TestEnrichSnapshotAndCounters(t *testing.T) {
	reg := prometheus.NewRegistry()
	e, err := New(WithCgroupRoot("cgroupfs/testdata/cgroup/v2"), WithProcRoot("cgroupfs/testdata/proc"), WithSnapshot(true), WithKillCounters(reg))
	if err != nil {
		t.Fatal(err)
	}
	if e.nodeMemory != 8048576*1024 {
		t.Errorf("node memory = %d", e.nodeMemory)
	}
	er := e.Enrich(context.Background(), fixtures.Memcg(fixtures.V2PodPath, fixtures.V2CtrPath, 32, nil, nil, fixtures.Victim(412, "app", 900)))
	if er.Snapshot == nil || er.Snapshot.LimitBytes == nil || *er.Snapshot.LimitBytes != 32<<20 || er.Snapshot.OOMGroup == nil || !*er.Snapshot.OOMGroup {
		t.Errorf("snapshot = %+v", er.Snapshot)
	}
	want := SourceCgroupPath + "," + SourceCgroupSnapshot + "," + SourceKernelCounters
	if got := strings.Join(er.Enrichment.Sources, ","); got != want {
		t.Errorf("sources %s, want %s (errors %v)", got, want, er.Enrichment.Errors)
	}
	// The first report sets the baselines: nothing missed.
	if er.MissedKills != nil {
		t.Errorf("missed kills on the first report: %+v", er.MissedKills)
	}
	// A cgroup that is gone: an error sentence, no snapshot.
	er = e.Enrich(context.Background(), fixtures.Memcg("/kubepods.slice/gone.slice", "/kubepods.slice/gone.slice", 32, nil, nil, fixtures.Victim(1, "x", 0)))
	if er.Snapshot != nil || !strings.Contains(strings.Join(er.Enrichment.Errors, "|"), "no longer exists") {
		t.Errorf("gone cgroup: snapshot %v errors %v", er.Snapshot, er.Enrichment.Errors)
	}
	// Global OOM: no limiting cgroup, no snapshot, no error.
	er = e.Enrich(context.Background(), &report.Report{Kind: report.KindGlobal, OOMMemcg: "/"})
	if er.Snapshot != nil || len(er.Enrichment.Errors) != 0 {
		t.Errorf("global: snapshot %v errors %v", er.Snapshot, er.Enrichment.Errors)
	}
	// The snapshot option without a controller is an error sentence, not a failure.
	e2, err := New(WithCgroupRoot(t.TempDir()), WithSnapshot(true))
	if err != nil {
		t.Fatal(err)
	}
	er = e2.Enrich(context.Background(), fixtures.Memcg(fixtures.V2PodPath, fixtures.V2CtrPath, 32, nil, nil, fixtures.Victim(1, "x", 0)))
	if er.Snapshot != nil || !strings.Contains(strings.Join(er.Enrichment.Errors, "|"), "no memory cgroup controller") {
		t.Errorf("no controller: errors %v", er.Enrichment.Errors)
	}
}

func TestEnrichJSON(t *testing.T) {
	e, err := New()
	if err != nil {
		t.Fatal(err)
	}
	r := parseCapture(t, "host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg")[0]
	b, err := json.Marshal(e.Enrich(context.Background(), &r))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"schema", "id", "kind", "oom_memcg", "victims", "derived", "pod", "container", "cgroups", "diagnosis", "enrichment"} {
		if _, ok := m[k]; !ok {
			t.Errorf("JSON lacks %q", k)
		}
	}
	pod := m["pod"].(map[string]any)
	if pod["uid"] != fixtures.PodUID || pod["qos_class"] != report.QoSBurstable {
		t.Errorf("pod = %v", pod)
	}
	d := m["diagnosis"].(map[string]any)
	if d["scope"] != "pod" || d["main_process_killed"] != false || !strings.HasPrefix(d["summary"].(string), "container 3f9a7c2d1e8b of pod 0b7e3c1e") {
		t.Errorf("diagnosis = %v", d)
	}
	if c := m["container"].(map[string]any); c["id"] != fixtures.CID {
		t.Errorf("container = %v", c)
	}
}

func TestEnrichConcurrent(t *testing.T) {
	e, err := New(WithCgroupRoot("cgroupfs/testdata/cgroup/v2"), WithProcRoot("cgroupfs/testdata/proc"), WithSnapshot(true), WithKillCounters(nil),
		WithPodLookup(&lateLookup{n: 1}))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			er := e.Enrich(context.Background(), fixtures.Memcg(fixtures.V2PodPath, fixtures.V2CtrPath, 32, nil, nil, fixtures.Victim(i, "app", 900)))
			if er.Diagnosis == nil || er.Snapshot == nil {
				t.Errorf("report %d: %+v", i, er)
			}
		}()
	}
	wg.Wait()
}

// parseCapture parses a file of ../testdata/captures.
func parseCapture(t *testing.T, name string) []report.Report {
	t.Helper()
	return goldens.Parse(t, filepath.Join("..", "testdata", "captures", name))
}

// fakeVictims is a VictimCgroups with fixed readings.
type fakeVictims map[int]procattr.Reading

func (f fakeVictims) Victim(pid int, comm string) (procattr.Reading, bool) {
	r, ok := f[pid]
	return r, ok && r.Comm == comm
}

// TestEnrichAttributesPartialReportFromProc: a report the kernel cut down
// to its victim line gets the victim's cgroup, pod and container from the
// /proc reading, and says so; a full report keeps the kernel's own paths.
func TestEnrichAttributesPartialReportFromProc(t *testing.T) {
	victims := fakeVictims{
		7: {PID: 7, Comm: "stress", Cgroup: fixtures.V2CtrPath},
		8: {PID: 8, Comm: "stress", Cgroup: "/elsewhere"},
	}
	e, err := New(WithVictimCgroups(victims))
	if err != nil {
		t.Fatal(err)
	}
	partial := &report.Report{Kind: report.KindUnknown, Partial: true, Victims: []report.Victim{{PID: 7, Comm: "stress"}}}
	er := e.Enrich(context.Background(), partial)
	if er.Attribution != report.AttributionProc || er.Pod == nil || er.Pod.UID != fixtures.PodUID || er.Container == nil || er.Container.ID != fixtures.CID {
		t.Errorf("partial report: attribution %q pod %+v container %+v", er.Attribution, er.Pod, er.Container)
	}
	if !slices.Contains(er.Enrichment.Sources, SourceProc) {
		t.Errorf("sources %v lack %s", er.Enrichment.Sources, SourceProc)
	}
	other := &report.Report{Kind: report.KindUnknown, Partial: true, Victims: []report.Victim{{PID: 9, Comm: "stress"}}}
	if er := e.Enrich(context.Background(), other); er.Attribution != "" || er.Pod != nil {
		t.Errorf("a victim without a reading was attributed: %q %+v", er.Attribution, er.Pod)
	}
	full := fixtures.Memcg(fixtures.V2PodPath, fixtures.V2CtrPath, 96, nil, nil, report.Victim{PID: 8, Comm: "stress"})
	if er := e.Enrich(context.Background(), full); er.Attribution != report.AttributionReport || er.Cgroups.Victim.Path != fixtures.V2CtrPath {
		t.Errorf("full report: attribution %q victim %+v", er.Attribution, er.Cgroups.Victim)
	}
}

// TestEnrichVictimSourcesCrossCheck: with /proc and the kill counters both
// asked, the one that knows attributes (and says which it was); when both
// know different cgroups, neither is used and the report says why.
func TestEnrichVictimSourcesCrossCheck(t *testing.T) {
	proc := fakeVictims{
		7: {PID: 7, Comm: "stress", Cgroup: fixtures.V2CtrPath, Source: report.AttributionProc},
		9: {PID: 9, Comm: "stress", Cgroup: fixtures.V2CtrPath, Source: report.AttributionProc},
	}
	counters := fakeVictims{
		8: {PID: 8, Comm: "stress", Cgroup: fixtures.V2CtrPath, Source: report.AttributionCounters},
		9: {PID: 9, Comm: "stress", Cgroup: "/kubepods.slice/other", Source: report.AttributionCounters},
	}
	e, err := New(WithVictimCgroups(proc), WithVictimCgroups(counters))
	if err != nil {
		t.Fatal(err)
	}
	partial := func(pid int) *report.Report {
		return &report.Report{Kind: report.KindUnknown, Partial: true, Victims: []report.Victim{{PID: pid, Comm: "stress"}}}
	}
	if er := e.Enrich(context.Background(), partial(7)); er.Attribution != report.AttributionProc || er.Pod == nil {
		t.Errorf("pid 7: attribution %q pod %+v", er.Attribution, er.Pod)
	}
	er := e.Enrich(context.Background(), partial(8))
	if er.Attribution != report.AttributionCounters || er.Pod == nil || er.Pod.UID != fixtures.PodUID || !slices.Contains(er.Enrichment.Sources, SourceOOMKillCounters) {
		t.Errorf("pid 8: attribution %q pod %+v sources %v", er.Attribution, er.Pod, er.Enrichment.Sources)
	}
	er = e.Enrich(context.Background(), partial(9))
	if er.Attribution != "" || er.Pod != nil || er.Cgroups != nil && er.Cgroups.Victim != nil {
		t.Errorf("pid 9 (sources disagree): attribution %q pod %+v", er.Attribution, er.Pod)
	}
	if len(er.Enrichment.Errors) == 0 || !strings.Contains(strings.Join(er.Enrichment.Errors, " "), "disagree") {
		t.Errorf("pid 9: errors %v do not say the sources disagree", er.Enrichment.Errors)
	}
}
