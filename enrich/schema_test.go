package enrich_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/oomscope/oomscope/enrich"
	"github.com/oomscope/oomscope/internal/goldens"
	"github.com/oomscope/oomscope/internal/jsonschema"
	"github.com/oomscope/oomscope/oomparse"
	"github.com/oomscope/oomscope/report"
)

// This file checks the enriched report's JSON (report.Enriched: the
// embedded report.Report's keys plus the enrichment keys, in one object)
// against docs/report.schema.json, as oomparse/schema_test.go does for the
// bare report: the enrichment of every golden input must validate, the
// schema must describe report.Enriched's Go types exactly, every enrichment
// property must be exercised by some validated report, and every
// enrichment key must be documented in docs/report.md's enrichment
// section.

const (
	schemaFile    = "../docs/report.schema.json"
	schemaDocFile = "../docs/report.md"
)

// enrichKeys are the top-level keys report.Enriched adds to the report's.
var enrichKeys = []string{"pod", "container", "cgroups", "snapshot", "missed_kills", "diagnosis", "enrichment", "attribution"}

// withBootID gives the parsed reports boot-id/seq ids, as the daemon's.
var withBootID = oomparse.WithBootID("6a1f8c52-0d3e-4b7a-9c21-5e8f0a6b3d47")

// fullReportInput is the capture the fully enriched report is built from:
// a pod-limit kill whose victim cgroup is a container's.
const fullReportInput = "../testdata/captures/host-6.18-cgroupv1-memcg-pod-limit-3-kills.kmsg"

func reportSchema(t *testing.T) *jsonschema.Validator {
	t.Helper()
	v, err := jsonschema.Load(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// decode marshals r and decodes it for the validator.
func decode(t *testing.T, r *report.Enriched) map[string]any {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := jsonschema.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	obj, ok := inst.(map[string]any)
	if !ok {
		t.Fatalf("an enriched report marshals to %s", jsonschema.TypeOf(inst))
	}
	return obj
}

// stubLookup fills every field of Pod and Container, keeping the ids the
// cgroup path told.
type stubLookup struct{}

func (stubLookup) Lookup(_ context.Context, podUID, containerID string) (*report.Pod, *report.Container, error) {
	req, lim := int64(64<<20), int64(96<<20)
	restarts := int32(3)
	pod := &report.Pod{
		Namespace: "shop", Name: "web-7d9f8b6c5d-x2kqp", UID: podUID, QoSClass: report.QoSBurstable,
		Node:   "node-1",
		Owner:  &report.Owner{Kind: "Deployment", Name: "web"},
		Labels: map[string]string{"app": "web", "team": "checkout"},
		// Both sums set: every container has a request and a limit.
		MemoryRequestBytes: &req, MemoryLimitBytes: &lim,
		Deleted: true,
	}
	ctr := &report.Container{
		Name: "python", ID: containerID, Runtime: report.RuntimeContainerd, Image: "python:3.13",
		Kind: report.ContainerKindApp, MemoryRequestBytes: &req, MemoryLimitBytes: &lim, RestartCount: &restarts,
		// Every instance field, for the schema (the cache sets started_at
		// for running instances only).
		State: "terminated", StartedAt: &stubTime, ObservedAt: &stubTime,
		Termination: &report.Termination{Reason: "OOMKilled", ExitCode: 137, Finished: &stubTime},
	}
	return pod, ctr, nil
}

func u64p(v uint64) *uint64 { return &v }

// stubTime is the time stubLookup's container instance times carry.
var stubTime = time.Date(2026, 11, 26, 23, 0, 0, 0, time.UTC)

// fullReport enriches the first report of fullReportInput with stubLookup,
// then adds a hand-built snapshot (both cgroup versions' files), missed
// kills (a cgroup's and the node's), and the diagnosis parts the capture
// does not produce, so that every enrichment key is set.
func fullReport(t *testing.T) *report.Enriched {
	t.Helper()
	reports := goldens.Parse(t, fullReportInput, withBootID)
	if len(reports) == 0 {
		t.Fatalf("no report in %s", fullReportInput)
	}
	e, err := enrich.New(enrich.WithPodLookup(stubLookup{}))
	if err != nil {
		t.Fatal(err)
	}
	out := e.Enrich(context.Background(), &reports[0])
	if out.Pod == nil || out.Pod.Owner == nil || out.Container == nil || out.Container.RestartCount == nil {
		t.Fatalf("the stub lookup was not applied: pod %+v container %+v (errors %q)", out.Pod, out.Container, out.Enrichment.Errors)
	}
	if out.Cgroups == nil || out.Cgroups.Limiting == nil || out.Cgroups.Victim == nil || out.Diagnosis == nil {
		t.Fatalf("cgroups or diagnosis missing: %+v %+v", out.Cgroups, out.Diagnosis)
	}
	on, procs := true, 2
	out.Snapshot = &report.Snapshot{
		Path: out.Cgroups.Limiting.Path, Version: report.CgroupV1,
		ReadAt:     time.Date(2026, 11, 27, 0, 0, 1, 500, time.UTC),
		LimitBytes: u64p(96 << 20), UsageBytes: 90 << 20, PeakBytes: u64p(96 << 20), SwapBytes: u64p(0),
		Failcnt:    u64p(2797),
		Events:     &report.MemoryEvents{Low: 0, High: 4, Max: 2797, OOM: 3, OOMKill: 3, OOMGroupKill: 0},
		OOMControl: &report.OOMControl{OOMKillDisable: false, UnderOOM: false, OOMKill: 3},
		OOMGroup:   &on, Procs: &procs,
		Stat: map[string]uint64{"anon": 88 << 20, "file": 1 << 20, "pgfault": 47537},
	}
	out.MissedKills = []report.MissedKills{
		{Cgroup: out.Cgroups.Victim.Path, Counter: "memory.oom_control:oom_kill", Count: 1, Explanation: "The kernel counted 1 kill no report showed."},
		{Counter: "/proc/vmstat:oom_kill", Count: 2, Explanation: "The node counted 2 kills no report showed."},
	}
	out.Enrichment.Sources = append(out.Enrichment.Sources, enrich.SourceCgroupSnapshot, enrich.SourceKernelCounters)
	out.Enrichment.Errors = append(out.Enrichment.Errors, "Container x is not in pod y's status (waited 0s).")
	d := out.Diagnosis
	if d.LimitBytes == nil {
		d.LimitBytes = u64p(96 << 20)
	}
	if d.MainProcessKilled == nil {
		d.MainProcessKilled = &on
	}
	if d.OOMGroup == nil {
		d.OOMGroup = &report.OOMGroupKill{Cgroup: out.Cgroups.Limiting.Path, Killed: 1, Explanation: "memory.oom.group killed 1 process."}
	}
	if d.Memory == nil || d.Victim == nil {
		t.Fatalf("the diagnosis of %s has no memory or victim part: %+v", fullReportInput, d)
	}
	if d.Victim.Biggest == nil {
		d.Victim.Biggest = &report.TaskRef{PID: 15899, Name: "python3", Bytes: 31215616, OOMScoreAdj: 0}
	}
	if d.Victim.ExpectedOOMScoreAdj == nil {
		adj := 334
		d.Victim.ExpectedOOMScoreAdj = &adj
	}
	return out
}

// TestSchemaEnrichedGoldens enriches every report of every golden input
// from its cgroup paths (enrich.New with no options, as `oomscope parse`
// does) and validates the JSON. It also checks that the enriched JSON is
// the bare report's object plus enrichment keys only.
func TestSchemaEnrichedGoldens(t *testing.T) {
	v := reportSchema(t)
	e, err := enrich.New()
	if err != nil {
		t.Fatal(err)
	}
	total, withPod := 0, 0
	for _, in := range goldens.Inputs(t, true) {
		t.Run(strings.TrimPrefix(in, "../testdata/"), func(t *testing.T) {
			reports := goldens.Parse(t, in, withBootID)
			for i := range reports {
				total++
				bare, err := json.Marshal(&reports[i])
				if err != nil {
					t.Fatal(err)
				}
				out := e.Enrich(context.Background(), &reports[i])
				if out.Pod != nil {
					withPod++
				}
				inst := decode(t, out)
				for _, msg := range v.Validate(inst) {
					t.Errorf("report %d: %s", i, msg)
				}
				if src, ok := inst["enrichment"].(map[string]any)["sources"].([]any); !ok || len(src) == 0 || src[0] != enrich.SourceCgroupPath {
					t.Errorf("report %d: want enrichment.sources starting with %q, got %v", i, enrich.SourceCgroupPath, inst["enrichment"])
				}
				if len(out.Enrichment.Errors) > 0 {
					t.Errorf("report %d: path-only enrichment reported errors: %q", i, out.Enrichment.Errors)
				}
				bareInst, err := jsonschema.Decode(bare)
				if err != nil {
					t.Fatal(err)
				}
				for k, val := range inst {
					bv, ok := bareInst.(map[string]any)[k]
					switch {
					case !ok && !slices.Contains(enrichKeys, k):
						t.Errorf("report %d: key %q is neither the report's nor an enrichment key", i, k)
					case ok && !reflect.DeepEqual(bv, val):
						t.Errorf("report %d: enrichment changed the report's key %q", i, k)
					}
				}
			}
		})
	}
	if total < 20 || withPod == 0 {
		t.Fatalf("enriched %d reports, %d with a pod: the golden inputs do not exercise enrichment", total, withPod)
	}
}

// TestSchemaEnrichedFull validates the fully enriched report, and checks
// that it, a conmon victim's report and the golden inputs' enrichments
// together set every enrichment property the schema describes, so that no
// part of the enrichment schema goes unexercised.
func TestSchemaEnrichedFull(t *testing.T) {
	v := reportSchema(t)
	full := decode(t, fullReport(t))
	for _, msg := range v.Validate(full) {
		t.Error(msg)
	}
	used := map[string]bool{}
	collectPaths(full, "", used)
	// A CRI-O container monitor (conmon) killed in a systemd-driver pod:
	// the golden inputs have none.
	conmon := conmonReport(t)
	for _, msg := range v.Validate(conmon) {
		t.Errorf("conmon report: %s", msg)
	}
	collectPaths(conmon, "", used)
	e, err := enrich.New()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range goldens.Inputs(t, true) {
		reports := goldens.Parse(t, in, withBootID)
		for i := range reports {
			collectPaths(decode(t, e.Enrich(context.Background(), &reports[i])), "", used)
		}
	}
	// A property counts as exercised when a report set it at any path
	// its schema is reached by (cgroups.limiting and cgroups.victim share
	// #/$defs/cgroup_path).
	props := v.Properties()
	usedSchema := map[string]bool{}
	for _, p := range props {
		if used[p.Path] {
			usedSchema[p.Schema] = true
		}
	}
	n := 0
	for _, p := range props {
		top, _, _ := strings.Cut(p.Path, ".")
		if !slices.Contains(enrichKeys, strings.TrimSuffix(top, "[]")) {
			continue
		}
		n++
		if !usedSchema[p.Schema] {
			t.Errorf("enrichment property %s (%s) is set by no validated report", p.Path, p.Schema)
		}
	}
	if n < 80 {
		t.Fatalf("the schema describes only %d enrichment properties", n)
	}
}

// conmonReport enriches, through stubLookup, a report whose victim is
// CRI-O's container monitor of a Burstable pod (systemd driver).
func conmonReport(t *testing.T) map[string]any {
	t.Helper()
	const (
		pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b7e3c1e_5a42_4c1b_9d7a_2f1f8c3e9a11.slice"
		cid = "3f9a7c2d1e8b4a6f9c0d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7e9f1a2b"
	)
	reports := goldens.Parse(t, fullReportInput, withBootID)
	r := reports[0]
	r.OOMMemcg, r.TaskMemcg = pod, pod+"/crio-conmon-"+cid+".scope"
	e, err := enrich.New(enrich.WithPodLookup(stubLookup{}))
	if err != nil {
		t.Fatal(err)
	}
	out := e.Enrich(context.Background(), &r)
	if out.Cgroups == nil || out.Cgroups.Victim == nil || !out.Cgroups.Victim.Conmon {
		t.Fatalf("the victim cgroup did not parse as a conmon's: %+v", out.Cgroups)
	}
	return decode(t, out)
}

// collectPaths records the dotted path (as [jsonschema.Property.Path]) of
// every object key in inst.
func collectPaths(inst any, at string, into map[string]bool) {
	switch x := inst.(type) {
	case map[string]any:
		for k, val := range x {
			p := strings.TrimPrefix(at+"."+k, ".")
			into[p] = true
			collectPaths(val, p, into)
		}
	case []any:
		for _, val := range x {
			collectPaths(val, at+"[]", into)
		}
	}
}

// TestSchemaEnrichmentValues puts every value the code can give an
// enumerated enrichment key (the package's constants) into the full report
// and validates it, so that the schema's enums cannot lag the code.
func TestSchemaEnrichmentValues(t *testing.T) {
	v := reportSchema(t)
	full, err := json.Marshal(fullReport(t))
	if err != nil {
		t.Fatal(err)
	}
	set := func(path ...string) func(r map[string]any, val any) {
		return func(r map[string]any, val any) {
			m := r
			for _, k := range path[:len(path)-1] {
				m = m[k].(map[string]any)
			}
			m[path[len(path)-1]] = val
		}
	}
	levels := []string{}
	for _, l := range []report.Level{report.LevelContainer, report.LevelPod, report.LevelQoS, report.LevelKubepods,
		report.LevelSystemService, report.LevelUserSession, report.LevelRoot, report.LevelOther} {
		levels = append(levels, string(l))
	}
	runtimes := []string{report.RuntimeContainerd, report.RuntimeCRIO, report.RuntimeDocker, report.RuntimePodman}
	qos := []string{report.QoSGuaranteed, report.QoSBurstable, report.QoSBestEffort}
	tests := []struct {
		name   string
		set    func(r map[string]any, val any)
		values []string
	}{
		{"diagnosis.scope", set("diagnosis", "scope"), []string{report.ScopeContainer, report.ScopePod, report.ScopeKubepods,
			report.ScopeNode, report.ScopeCpuset, report.ScopeMempolicy, report.ScopeSystemService, report.ScopeOther}},
		{"diagnosis.outcome", set("diagnosis", "outcome"), []string{report.OutcomeContainerRestarts, report.OutcomeChildKilled,
			report.OutcomeSandboxKilled, report.OutcomeProcessKilled, report.OutcomeNothingKilled, report.OutcomeUnknown}},
		{"cgroups.victim.level", set("cgroups", "victim", "level"), levels},
		{"cgroups.victim.runtime", set("cgroups", "victim", "runtime"), runtimes},
		{"cgroups.victim.driver", set("cgroups", "victim", "driver"), []string{report.DriverCgroupfs, report.DriverSystemd}},
		{"cgroups.victim.qos", set("cgroups", "victim", "qos"), qos},
		{"pod.qos_class", set("pod", "qos_class"), qos},
		{"container.kind", set("container", "kind"), []string{report.ContainerKindApp, report.ContainerKindInit, report.ContainerKindEphemeral}},
		// The API's container id scheme is passed through when it is not
		// a known runtime's.
		{"container.runtime", set("container", "runtime"), append(runtimes, "kata")},
		{"snapshot.version", set("snapshot", "version"), []string{report.CgroupV1, report.CgroupV2}},
		{"enrichment.sources", func(r map[string]any, val any) { set("enrichment", "sources")(r, []any{val}) },
			[]string{enrich.SourceCgroupPath, enrich.SourceKubernetesAPI, enrich.SourceCgroupSnapshot, enrich.SourceKernelCounters}},
	}
	for _, tc := range tests {
		for _, val := range tc.values {
			t.Run(tc.name+"="+val, func(t *testing.T) {
				inst, err := jsonschema.Decode(full)
				if err != nil {
					t.Fatal(err)
				}
				tc.set(inst.(map[string]any), val)
				for _, msg := range v.Validate(inst) {
					t.Error(msg)
				}
			})
		}
	}
}

// TestSchemaRejectsBrokenEnrichment mutates the fully enriched report and
// checks that the schema catches each mutation.
func TestSchemaRejectsBrokenEnrichment(t *testing.T) {
	v := reportSchema(t)
	full, err := json.Marshal(fullReport(t))
	if err != nil {
		t.Fatal(err)
	}
	sub := func(r map[string]any, keys ...string) map[string]any {
		for _, k := range keys {
			r = r[k].(map[string]any)
		}
		return r
	}
	tests := []struct {
		name    string
		mutate  func(r map[string]any)
		wantErr string
	}{
		{"unknown pod key", func(r map[string]any) { sub(r, "pod")["pod_name"] = "web" }, `/pod: unknown key "pod_name"`},
		{"pod without uid", func(r map[string]any) { delete(sub(r, "pod"), "uid") }, `/pod: missing required key "uid"`},
		{"unknown qos class", func(r map[string]any) { sub(r, "pod")["qos_class"] = "burstable" }, `/pod/qos_class: "burstable" is not one of`},
		{"label not a string", func(r map[string]any) { sub(r, "pod", "labels")["app"] = json.Number("1") }, "/pod/labels/app: want string, got integer"},
		{"owner without name", func(r map[string]any) { delete(sub(r, "pod", "owner"), "name") }, `/pod/owner: missing required key "name"`},
		{"negative restart count", func(r map[string]any) { sub(r, "container")["restart_count"] = json.Number("-1") }, "/container/restart_count: -1 is less than the minimum 0"},
		{"unknown container kind", func(r map[string]any) { sub(r, "container")["kind"] = "sidecar" }, `/container/kind: "sidecar" is not one of`},
		{"unknown cgroup level", func(r map[string]any) { sub(r, "cgroups", "limiting")["level"] = "slice" }, `/cgroups/limiting/level: "slice" is not one of`},
		{"snapshot without usage", func(r map[string]any) { delete(sub(r, "snapshot"), "usage_bytes") }, `/snapshot: missing required key "usage_bytes"`},
		{"snapshot version 3", func(r map[string]any) { sub(r, "snapshot")["version"] = "v3" }, `/snapshot/version: "v3" is not one of`},
		{"snapshot event missing", func(r map[string]any) { delete(sub(r, "snapshot", "events"), "oom_kill") }, `/snapshot/events: missing required key "oom_kill"`},
		{"snapshot stat negative", func(r map[string]any) { sub(r, "snapshot", "stat")["anon"] = json.Number("-1") }, "/snapshot/stat/anon: -1 is less than the minimum 0"},
		{"missed kill count string", func(r map[string]any) {
			r["missed_kills"].([]any)[0].(map[string]any)["count"] = "1"
		}, "/missed_kills/0/count: want integer, got string"},
		{"diagnosis bad scope", func(r map[string]any) { sub(r, "diagnosis")["scope"] = "namespace" }, `/diagnosis/scope: "namespace" is not one of`},
		{"diagnosis without summary", func(r map[string]any) { delete(sub(r, "diagnosis"), "summary") }, `/diagnosis: missing required key "summary"`},
		{"diagnosis bad dominant", func(r map[string]any) { sub(r, "diagnosis", "memory")["dominant"] = "cache" }, `/diagnosis/memory/dominant: "cache" is not one of`},
		{"unknown source", func(r map[string]any) { sub(r, "enrichment")["sources"] = []any{"guess"} }, `/enrichment/sources/0: "guess" is not one of`},
		{"enrichment without sources", func(r map[string]any) { delete(sub(r, "enrichment"), "sources") }, `/enrichment: missing required key "sources"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			inst, err := jsonschema.Decode(full)
			if err != nil {
				t.Fatal(err)
			}
			if errs := v.Validate(inst); len(errs) > 0 {
				t.Fatalf("the unmodified report is invalid: %q", errs)
			}
			tc.mutate(inst.(map[string]any))
			errs := v.Validate(inst)
			if !strings.Contains(strings.Join(errs, "\n"), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %q", tc.wantErr, errs)
			}
		})
	}
}

// TestSchemaCoversEnrichReport walks report.Enriched's Go types (the
// embedded report.Report's keys flattened into the same object): the
// schema must describe every key they can emit, with matching types, and
// nothing more.
func TestSchemaCoversEnrichReport(t *testing.T) {
	v := reportSchema(t)
	// enrichment is in every enriched report (TestSchemaEnrichedGoldens
	// checks it) but cannot be required: the same schema describes bare
	// oomparse reports.
	// report.Enriched marshals itself only to escape terminal controls in
	// the encoding/json output of its own fields: its keys are those of
	// the plain struct.
	type plainEnriched report.Enriched
	for _, msg := range v.Cover(reflect.TypeFor[plainEnriched](), jsonschema.OptionalKeys("enrichment")) {
		t.Error(msg)
	}
}

// TestSchemaDocCoversEnrichment checks that every enrichment property of
// the schema is named (in backticks) in docs/report.md's enrichment
// section, not just somewhere in the document.
func TestSchemaDocCoversEnrichment(t *testing.T) {
	v := reportSchema(t)
	b, err := os.ReadFile(schemaDocFile)
	if err != nil {
		t.Fatal(err)
	}
	const heading = "\n## Enrichment keys"
	i := bytes.Index(b, []byte(heading))
	if i < 0 {
		t.Fatalf("%s has no %q section", schemaDocFile, strings.TrimSpace(heading))
	}
	section := b[i+len(heading):]
	if j := bytes.Index(section, []byte("\n## ")); j >= 0 {
		section = section[:j]
	}
	if bytes.Contains(bytes.ToLower(section), []byte("work in progress")) {
		t.Errorf("the enrichment section still says it is work in progress")
	}
	named := jsonschema.DocumentedWords(section)
	var missing []string
	for _, p := range v.Properties() {
		top, _, _ := strings.Cut(p.Path, ".")
		if slices.Contains(enrichKeys, strings.TrimSuffix(top, "[]")) && !named[p.Key] {
			missing = append(missing, p.Path)
		}
	}
	sort.Strings(missing)
	for _, p := range missing {
		t.Errorf("%s is not documented in the enrichment section of %s", p, schemaDocFile)
	}
}
