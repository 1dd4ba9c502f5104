package kubeevents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/oomscope/oomscope/internal/envtestbin"
	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// daemonUser is the name the API server gives the DaemonSet's service
// account; the tests' sink clients authenticate as it, so the ClusterRole
// of deploy/daemonset.yaml is what authorises them.
const daemonUser = "system:serviceaccount:oomscope:oomscope"

// TestEventsEnvtest runs the sink against a real kube-apiserver and etcd
// (controller-runtime's envtest), as the DaemonSet's service account with
// the RBAC of deploy/daemonset.yaml. One control plane serves all subtests;
// the last one stops and restarts its API server.
func TestEventsEnvtest(t *testing.T) {
	if testing.Short() {
		t.Skip("envtest: not in -short mode (make unit); make test runs it")
	}
	dir := envtestbin.Dir(t)
	ctrllog.SetLogger(logr.Discard())
	env := &envtest.Environment{
		BinaryAssetsDirectory:    dir,
		ControlPlaneStartTimeout: 3 * time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	// A fixed certificate directory: the API server restarted in the
	// outage subtest serves the same certificates, on the same port, from
	// the same etcd, so the clients carry on.
	env.ControlPlane.APIServer = &envtest.APIServer{CertDir: t.TempDir()}
	start := time.Now()
	adminCfg, err := env.Start()
	if err != nil {
		t.Fatalf("start envtest control plane from %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	t.Logf("envtest control plane started in %v", time.Since(start).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	admin, err := kubernetes.NewForConfig(adminCfg)
	if err != nil {
		t.Fatal(err)
	}
	applyRBAC(ctx, t, adminCfg)
	user, err := env.AddUser(envtest.User{Name: daemonUser}, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &envt{t: t, admin: admin, userCfg: user.Config()}
	e.waitAuthorized(ctx)

	node, err := admin.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	e.nodeUID = string(node.UID)
	if _, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	t.Run("events land", func(t *testing.T) { e.testEventsLand(ctx, t) })
	t.Run("retry and restart", func(t *testing.T) { e.testRetryRestart(ctx, t) })
	t.Run("namespace gone", func(t *testing.T) { e.testNamespaceGone(ctx, t) })
	t.Run("hostile names", func(t *testing.T) { e.testHostile(ctx, t) })
	t.Run("storm", func(t *testing.T) { e.testStorm(ctx, t) })
	t.Run("API server outage", func(t *testing.T) { e.testOutage(ctx, t, env) })

	// Every Event the sink wrote, whatever the subtest, is one clean line.
	all, err := admin.CoreV1().Events("").List(ctx, metav1.ListOptions{LabelSelector: LabelManagedBy + "=" + Controller})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range all.Items {
		checkLine(t, ev.Message)
	}
	t.Logf("%d Events written in all", len(all.Items))
}

type envt struct {
	t       *testing.T
	admin   kubernetes.Interface
	userCfg *rest.Config
	nodeUID string
}

// applyRBAC creates the Namespace, ServiceAccount, ClusterRole and
// ClusterRoleBinding of deploy/daemonset.yaml.
func applyRBAC(ctx context.Context, t *testing.T, cfg *rest.Config) {
	t.Helper()
	c, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile("../../deploy/daemonset.yaml")
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var kinds []string
	for {
		var u unstructured.Unstructured
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode daemonset.yaml: %v", err)
		}
		switch u.GetKind() {
		case "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding":
			if err := c.Create(ctx, &u); err != nil {
				t.Fatalf("create %s %s: %v", u.GetKind(), u.GetName(), err)
			}
			kinds = append(kinds, u.GetKind())
		}
		if u.GetKind() == "ClusterRole" {
			checkEventRules(t, &u)
		}
	}
	if len(kinds) != 4 {
		t.Fatalf("daemonset.yaml has %v, want a Namespace, ServiceAccount, ClusterRole and ClusterRoleBinding", kinds)
	}
}

// checkEventRules checks that the ClusterRole grants exactly the verbs the
// sink uses on events and nodes: no more (the tests below show they are
// enough).
func checkEventRules(t *testing.T, role *unstructured.Unstructured) {
	t.Helper()
	rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
	verbs := map[string][]string{}
	for _, r := range rules {
		m := r.(map[string]any)
		groups, _, _ := unstructured.NestedStringSlice(m, "apiGroups")
		res, _, _ := unstructured.NestedStringSlice(m, "resources")
		vs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		for _, g := range groups {
			for _, rs := range res {
				verbs[g+"/"+rs] = append(verbs[g+"/"+rs], vs...)
			}
		}
	}
	for res, want := range map[string][]string{
		"/events":              {"create", "list", "patch"},
		"/nodes":               {"get"},
		"events.k8s.io/events": nil,
	} {
		got := slices.Sorted(slices.Values(verbs[res]))
		if !slices.Equal(got, want) {
			t.Errorf("ClusterRole verbs on %s = %v, want %v", res, got, want)
		}
	}
}

// waitAuthorized waits until the RBAC authorizer knows the binding.
func (e *envt) waitAuthorized(ctx context.Context) {
	cs, _ := e.client(nil)
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := cs.CoreV1().Events("default").List(ctx, metav1.ListOptions{Limit: 1})
		if err == nil {
			return
		}
		if !apierrors.IsForbidden(err) || time.Now().After(deadline) {
			e.t.Fatalf("list events as %s: %v", daemonUser, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// counter counts the requests that leave the client (after the sink's
// limiter) and can make a response get lost after the API server applied
// the request, as a dropped connection would.
type counter struct {
	mu    sync.Mutex
	times []time.Time
	verbs map[string]int
	lose  func(req *http.Request, n int) bool // n: the how-manieth request of its method

	lost int
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func (c *counter) wrap(rt http.RoundTripper) http.RoundTripper {
	return rtFunc(func(req *http.Request) (*http.Response, error) {
		c.mu.Lock()
		c.times = append(c.times, time.Now())
		if c.verbs == nil {
			c.verbs = map[string]int{}
		}
		c.verbs[req.Method]++
		lose := c.lose != nil && c.lose(req, c.verbs[req.Method])
		c.mu.Unlock()
		resp, err := rt.RoundTrip(req)
		if err == nil && lose && resp.StatusCode < 300 {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			c.mu.Lock()
			c.lost++
			c.mu.Unlock()
			return nil, fmt.Errorf("test: response to %s %s lost after the API server applied it", req.Method, req.URL.Path)
		}
		return resp, err
	})
}

func (c *counter) snapshot() ([]time.Time, map[string]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := map[string]int{}
	for k, n := range c.verbs {
		v[k] = n
	}
	return slices.Clone(c.times), v, c.lost
}

// client is a clientset of the daemon's user whose own rate limiter is out
// of the way (the sink's is under test), counting requests in c.
func (e *envt) client(c *counter) (kubernetes.Interface, error) {
	cfg := rest.CopyConfig(e.userCfg)
	cfg.QPS, cfg.Burst = 1e6, 1e6
	cfg.Timeout = 10 * time.Second
	if c != nil {
		cfg.WrapTransport = c.wrap
	}
	return kube.NewClientset(cfg)
}

func (e *envt) sink(t *testing.T, cfg Config, c *counter) *Sink {
	t.Helper()
	cs, err := e.client(c)
	if err != nil {
		t.Fatal(err)
	}
	cfg.NodeName = testNode
	s, err := New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *envt) pod(ctx context.Context, t *testing.T, ns, name string) *corev1.Pod {
	t.Helper()
	p, err := e.admin.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{
			NodeName:       testNode,
			InitContainers: []corev1.Container{{Name: "setup", Image: "example.com/setup:1"}},
			Containers:     []corev1.Container{{Name: "app", Image: "example.com/web:3"}},
		},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return p
}

// events lists the Events in ns matching the field selector (the way
// kubectl describe finds an object's Events).
func (e *envt) events(ctx context.Context, t *testing.T, ns, fields string) []corev1.Event {
	t.Helper()
	l, err := e.admin.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: fields})
	if err != nil {
		t.Fatalf("list events in %s (%s): %v", ns, fields, err)
	}
	return l.Items
}

func podFields(p *corev1.Pod) string {
	return fmt.Sprintf("involvedObject.kind=Pod,involvedObject.namespace=%s,involvedObject.name=%s,involvedObject.uid=%s", p.Namespace, p.Name, p.UID)
}

const nodeFields = "involvedObject.kind=Node,involvedObject.name=" + testNode

// tally checks that every report id in ids is counted exactly once in evs
// (in its own Event, or in an aggregate's folded list) and that the counts
// add up; it returns the sum of the counts.
func tally(t *testing.T, evs []corev1.Event, ids []string) int {
	t.Helper()
	byHash := map[string]string{}
	for _, id := range ids {
		byHash[shortHash("report|"+id)] = id
	}
	seen := map[string]int{}
	sum := 0
	for _, ev := range evs {
		sum += int(ev.Count)
		switch ev.Labels[LabelEvent] {
		case eventKill:
			if ev.Count != 1 {
				t.Errorf("kill Event %s has count %d", ev.Name, ev.Count)
			}
			seen[ev.Annotations[AnnotationReportID]]++
		case eventAggregate:
			folded := strings.Split(ev.Annotations[AnnotationFolded], ",")
			if int(ev.Count) != len(folded) {
				t.Errorf("aggregate %s: count %d, %d folded", ev.Name, ev.Count, len(folded))
			}
			for _, h := range folded {
				seen[byHash[h]]++
			}
		default:
			t.Errorf("Event %s without the %s label", ev.Name, LabelEvent)
		}
	}
	for _, id := range ids {
		if seen[id] != 1 {
			t.Errorf("report %s counted %d times", id, seen[id])
		}
	}
	if len(seen) != len(ids) {
		t.Errorf("%d reports counted, want %d", len(seen), len(ids))
	}
	return sum
}

// only keeps the Events that count reports of ids.
func only(evs []corev1.Event, ids []string) []corev1.Event {
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
		want[shortHash("report|"+id)] = true
	}
	var out []corev1.Event
	for _, ev := range evs {
		switch ev.Labels[LabelEvent] {
		case eventKill:
			if want[ev.Annotations[AnnotationReportID]] {
				out = append(out, ev)
			}
		case eventAggregate:
			if h, _, _ := strings.Cut(ev.Annotations[AnnotationFolded], ","); want[h] {
				out = append(out, ev)
			}
		}
	}
	return out
}

// publish is the outbox standing in: it retries d until it is delivered.
func publish(ctx context.Context, s *Sink, d sink.Delivery, backoff time.Duration) (failures int, err error) {
	for {
		actx, cancel := context.WithTimeout(ctx, 15*time.Second)
		err := s.Publish(actx, d)
		cancel()
		if err == nil {
			return failures, nil
		}
		failures++
		select {
		case <-ctx.Done():
			return failures, fmt.Errorf("report %s not delivered: %w (last error: %v)", d.Report.ID, ctx.Err(), err)
		case <-time.After(backoff):
		}
	}
}

func mustPublish(ctx context.Context, t *testing.T, s *Sink, r *report.Enriched) {
	t.Helper()
	if err := s.Publish(ctx, sink.Delivery{Report: r, Queued: time.Now()}); err != nil {
		t.Fatalf("publish %s: %v", r.ID, err)
	}
}

func (e *envt) testEventsLand(ctx context.Context, t *testing.T) {
	s := e.sink(t, Config{}, nil)
	web := e.pod(ctx, t, "shop", "web-1")
	now := time.Now().Truncate(time.Microsecond)

	kill := containerKill(100, now, "shop", web.Name, string(web.UID), "python3", 4242)
	mustPublish(ctx, t, s, kill)
	evs := e.events(ctx, t, "shop", podFields(web))
	if len(evs) != 1 {
		t.Fatalf("%d Events on pod %s, want 1", len(evs), web.Name)
	}
	ev := evs[0]
	want := corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: web.Name, UID: web.UID, FieldPath: "spec.containers{app}"}
	if ev.InvolvedObject != want {
		t.Errorf("involvedObject = %+v, want %+v", ev.InvolvedObject, want)
	}
	if ev.Type != corev1.EventTypeWarning || ev.Reason != "OOMKilling" || ev.Action != "Kill" ||
		ev.ReportingController != "oomscope" || ev.ReportingInstance != testNode ||
		ev.Source != (corev1.EventSource{Component: "oomscope", Host: testNode}) || ev.Count != 1 {
		t.Errorf("event fields: type %s reason %s action %s controller %s instance %s source %+v count %d",
			ev.Type, ev.Reason, ev.Action, ev.ReportingController, ev.ReportingInstance, ev.Source, ev.Count)
	}
	if !ev.EventTime.Time.Equal(now) || !ev.FirstTimestamp.Time.Equal(now.Truncate(time.Second)) || !ev.LastTimestamp.Time.Equal(now.Truncate(time.Second)) {
		t.Errorf("times: eventTime %v first %v last %v, want the kill at %v", ev.EventTime, ev.FirstTimestamp, ev.LastTimestamp, now)
	}
	for _, part := range []string{`"python3"`, "4242", "main process", "container limit 512Mi", "usage 512Mi", "; report " + kill.ID} {
		if !strings.Contains(ev.Message, part) {
			t.Errorf("message %q lacks %q", ev.Message, part)
		}
	}
	if ev.Name != killEventName(web.Name, kill.ID) {
		t.Errorf("name %s, want %s", ev.Name, killEventName(web.Name, kill.ID))
	}
	t.Logf("pod Event %s: %s", ev.Name, ev.Message)

	// An init container's kill points at spec.initContainers.
	initKill := containerKill(200, now, "shop", web.Name, string(web.UID), "migrate", 17)
	initKill.Container.Name, initKill.Container.Kind = "setup", "init"
	mustPublish(ctx, t, s, initKill)
	evs = e.events(ctx, t, "shop", podFields(web)+",involvedObject.fieldPath=spec.initContainers{setup}")
	if len(evs) != 1 || !strings.Contains(evs[0].Message, `in container "setup"`) {
		t.Errorf("init container Events: %+v", evs)
	}

	// A static pod's kill: kubectl describe looks for the config hash
	// (the mirror pod's annotation), as the kubelet names the pod in its
	// Events, not for the mirror pod's uid.
	const hash = "6f1a0e3c9b2d4a5e8f7c6b5a4d3e2f1a"
	mirror, err := e.admin.CoreV1().Pods("shop").Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "etcd-" + testNode, Annotations: map[string]string{corev1.MirrorPodAnnotationKey: hash}},
		Spec:       corev1.PodSpec{NodeName: testNode, Containers: []corev1.Container{{Name: "app", Image: "example.com/etcd:3"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	static := containerKill(250, now, "shop", mirror.Name, string(mirror.UID), "etcd", 99)
	static.Cgroups.Victim.PodUID, static.Cgroups.Limiting.PodUID = hash, hash
	mustPublish(ctx, t, s, static)
	describeRef := mirror.DeepCopy()
	describeRef.UID = hash
	if evs := e.events(ctx, t, "shop", podFields(describeRef)); len(evs) != 1 {
		t.Errorf("%d Events for the static pod as kubectl describe looks for them, want 1", len(evs))
	}

	// A node-level kill: on the Node, with its uid.
	global := globalKill(300, now, "stress", 31337)
	mustPublish(ctx, t, s, global)
	evs = e.events(ctx, t, "default", nodeFields+",involvedObject.uid="+e.nodeUID)
	if len(evs) != 1 {
		t.Fatalf("%d Events on the Node, want 1", len(evs))
	}
	ev = evs[0]
	if ev.InvolvedObject != (corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: testNode, UID: types.UID(e.nodeUID)}) {
		t.Errorf("involvedObject = %+v", ev.InvolvedObject)
	}
	for _, part := range []string{`"stress"`, "31337", "node out of memory (global OOM)", `unit "kubelet.service"`, "; report " + global.ID} {
		if !strings.Contains(ev.Message, part) {
			t.Errorf("message %q lacks %q", ev.Message, part)
		}
	}
	t.Logf("node Event %s: %s", ev.Name, ev.Message)

	// A kill in a pod the API does not know (uid from the cgroup path):
	// on the Node, naming the pod uid and the container id.
	const ghostUID = "5d1c4a2b-9e8f-4a7b-8c6d-1e2f3a4b5c6d"
	ghost := containerKill(400, now, "", "", ghostUID, "php-fpm", 808)
	mustPublish(ctx, t, s, ghost)
	var found *corev1.Event
	for _, ev := range e.events(ctx, t, "default", nodeFields) {
		if ev.Annotations[AnnotationReportID] == ghost.ID {
			found = &ev
		}
	}
	if found == nil {
		t.Fatal("no Event on the Node for the unknown pod's kill")
	}
	for _, part := range []string{"unknown pod " + ghostUID, "in container " + cidApp[:12], `"php-fpm"`, "; report " + ghost.ID} {
		if !strings.Contains(found.Message, part) {
			t.Errorf("message %q lacks %q", found.Message, part)
		}
	}
	t.Logf("unknown pod Event %s: %s", found.Name, found.Message)
}

func (e *envt) testRetryRestart(ctx context.Context, t *testing.T) {
	web := e.pod(ctx, t, "shop", "web-2")
	now := time.Now()
	kill := containerKill(1000, now, "shop", web.Name, string(web.UID), "python3", 1)

	a := e.sink(t, Config{}, nil)
	mustPublish(ctx, t, a, kill)
	mustPublish(ctx, t, a, kill) // a retry of a delivered report
	var cb counter
	b := e.sink(t, Config{}, &cb)
	mustPublish(ctx, t, b, kill) // a new instance, as after a crash before the outbox recorded success
	if evs := e.events(ctx, t, "shop", podFields(web)); len(evs) != 1 {
		t.Fatalf("%d Events after publishing one report three times, want 1", len(evs))
	}
	// The kill's window began before b started: b read it back.
	if _, verbs, _ := cb.snapshot(); verbs["GET"] != 1 || len(verbs) != 1 {
		t.Errorf("the new instance sent %v, want one list", verbs)
	}

	// A window b need not read back (it begins after b started): the
	// create meets the Event and counts it as delivered.
	later := containerKill(1100, now.Add(2*time.Minute), "shop", web.Name, string(web.UID), "python3", 2)
	mustPublish(ctx, t, a, later)
	mustPublish(ctx, t, b, later)
	if got := result(t, b, ResultExists); got != 1 {
		t.Errorf("the new instance's exists = %d, want 1", got)
	}
	if evs := e.events(ctx, t, "shop", podFields(web)); len(evs) != 2 {
		t.Fatalf("%d Events for 2 reports, want 2", len(evs))
	}

	// A window with folded kills, continued by a new instance: it reads
	// the window's Events back (one list request) and counts nothing
	// twice, neither the reports the outbox sends again nor a kill's own
	// Event.
	agg := e.pod(ctx, t, "shop", "web-3")
	past := now.Add(-10 * time.Minute).Truncate(time.Minute)
	kills := make([]*report.Enriched, 8)
	ids := make([]string, len(kills))
	for i := range kills {
		kills[i] = containerKill(uint64(2000+100*i), past.Add(time.Duration(i)*time.Second), "shop", agg.Name, string(agg.UID), "java", 100+i)
		ids[i] = kills[i].ID
	}
	a = e.sink(t, Config{PerWindow: 3}, nil)
	for _, r := range kills[:6] {
		mustPublish(ctx, t, a, r)
	}
	var c counter
	b = e.sink(t, Config{PerWindow: 3}, &c)
	for _, r := range []*report.Enriched{kills[3], kills[4], kills[5], kills[0], kills[6], kills[7]} {
		mustPublish(ctx, t, b, r)
	}
	evs := e.events(ctx, t, "shop", podFields(agg))
	if len(evs) != 4 {
		t.Errorf("%d Events, want 3 kills' own and 1 aggregate", len(evs))
	}
	if sum := tally(t, evs, ids); sum != 8 {
		t.Errorf("counts add up to %d, want 8", sum)
	}
	_, verbs, _ := c.snapshot()
	if verbs["GET"] != 1 || verbs["PATCH"] != 2 || verbs["POST"] != 0 {
		t.Errorf("the new instance sent %v; want 1 list and 2 patches", verbs)
	}
	for _, ev := range evs {
		if ev.Labels[LabelEvent] == eventAggregate {
			t.Logf("aggregate %s (count %d): %s", ev.Name, ev.Count, ev.Message)
			if !strings.HasPrefix(ev.Message, `5 more OOM kills in container "app" since `) || !strings.HasSuffix(ev.Message, "; ids "+ids[3]+"…"+ids[7]) {
				t.Errorf("aggregate message %q", ev.Message)
			}
		}
	}
}

func (e *envt) testNamespaceGone(ctx context.Context, t *testing.T) {
	s := e.sink(t, Config{}, nil)
	if _, err := e.admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "doomed"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	p := e.pod(ctx, t, "doomed", "batch-1")
	if err := e.admin.CoreV1().Namespaces().Delete(ctx, "doomed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	// No namespace controller runs in envtest: the namespace stays
	// terminating, its pod stays.
	ns, err := e.admin.CoreV1().Namespaces().Get(ctx, "doomed", metav1.GetOptions{})
	if err != nil || ns.Status.Phase != corev1.NamespaceTerminating {
		t.Fatalf("namespace doomed: %v, %v", ns.Status.Phase, err)
	}
	now := time.Now()
	terminating := containerKill(5000, now, "doomed", p.Name, string(p.UID), "batch", 1)
	missing := containerKill(5100, now, "ghost-town", "web-9", "6e2d5b3c-0f9a-4b8c-9d7e-2f3a4b5c6d7e", "web", 2)
	for _, r := range []*report.Enriched{terminating, missing, terminating, missing} {
		mustPublish(ctx, t, s, r)
	}
	if evs := e.events(ctx, t, "doomed", ""); len(evs) != 0 {
		t.Errorf("%d Events in the terminating namespace", len(evs))
	}
	byID := map[string]corev1.Event{}
	for _, ev := range e.events(ctx, t, "default", nodeFields) {
		byID[ev.Annotations[AnnotationReportID]] = ev
	}
	for r, want := range map[*report.Enriched]string{
		terminating: `in container "app" of pod doomed/batch-1`,
		missing:     `in container "app" of pod ghost-town/web-9`,
	} {
		ev, ok := byID[r.ID]
		if !ok {
			t.Errorf("no Event on the Node for %s", r.ID)
			continue
		}
		if !strings.Contains(ev.Message, want) {
			t.Errorf("message %q lacks %q", ev.Message, want)
		}
	}
}

func (e *envt) testHostile(ctx context.Context, t *testing.T) {
	s := e.sink(t, Config{QPS: 100}, nil)
	p := e.pod(ctx, t, "shop", "hostile-1")
	now := time.Now()
	ids := map[string]bool{}
	for i, h := range hostile {
		// The pod is real; what the process calls itself, the container
		// name and the cgroup paths in the report are not checked by
		// anyone.
		r := containerKill(uint64(6000+100*i), now, "shop", p.Name, string(p.UID), h, 1000+i)
		r.Container.Name = h
		r.OOMMemcg, r.TaskMemcg = h, h
		mustPublish(ctx, t, s, r)
		ids[r.ID] = true
		// And a pod name that the API would never have given.
		q := containerKill(uint64(6050+100*i), now, "shop", h, podUID, h, 2000+i)
		mustPublish(ctx, t, s, q)
		ids[q.ID] = true
	}
	n := 0
	for _, ns := range []string{"shop", "default"} {
		for _, ev := range e.events(ctx, t, ns, "") {
			if !ids[ev.Annotations[AnnotationReportID]] {
				continue
			}
			n++
			checkLine(t, ev.Message)
			if ev.InvolvedObject.FieldPath != "" && ev.InvolvedObject.FieldPath != "spec.containers{app}" {
				t.Errorf("fieldPath %q from a hostile container name", ev.InvolvedObject.FieldPath)
			}
			if ns == "shop" && ev.InvolvedObject.Name != p.Name {
				t.Errorf("Event on %+v", ev.InvolvedObject)
			}
		}
	}
	if n != len(ids) {
		t.Errorf("%d Events for %d hostile reports", n, len(ids))
	}
}

func (e *envt) testStorm(ctx context.Context, t *testing.T) {
	const (
		kills   = 1000
		spacing = 150 * time.Millisecond // 1,000 kills in 150s: three one-minute windows
		qps     = 50
		burst   = 10
	)
	p := e.pod(ctx, t, "shop", "storm-1")
	c := &counter{lose: func(req *http.Request, n int) bool {
		// Every 7th create and every 41st patch lands, but its response
		// is lost.
		return req.Method == http.MethodPost && n%7 == 0 || req.Method == http.MethodPatch && n%41 == 0
	}}
	s := e.sink(t, Config{QPS: qps, Burst: burst}, c)
	base := time.Now().Add(-4 * time.Minute).Truncate(time.Minute)
	ids := make([]string, kills)
	failures, repeats := 0, 0
	start := time.Now()
	for i := range kills {
		r := containerKill(uint64(100000+100*i), base.Add(time.Duration(i)*spacing), "shop", p.Name, string(p.UID), "worker", 10000+i)
		ids[i] = r.ID
		d := sink.Delivery{Report: r, Queued: time.Now()}
		f, err := publish(ctx, s, d, 10*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		failures += f
		if i%10 == 9 {
			// The outbox may send a delivered report again.
			if _, err := publish(ctx, s, d, 10*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			repeats++
		}
	}
	elapsed := time.Since(start)
	times, verbs, lost := c.snapshot()

	evs := e.events(ctx, t, "shop", podFields(p))
	sum := tally(t, evs, ids)
	windows := 3
	bound := windows * (DefaultPerWindow + 1)
	aggregates := 0
	for _, ev := range evs {
		if ev.Labels[LabelEvent] == eventAggregate {
			aggregates++
			t.Logf("aggregate %s count %d: %s", ev.Name, ev.Count, ev.Message)
		}
	}
	t.Logf("storm: %d kills in %v through %d Events (%d aggregates, bound %d), counts add up to %d; %d requests %v, %d responses lost, %d failed publishes retried, %d delivered reports sent again",
		kills, elapsed.Round(time.Millisecond), len(evs), aggregates, bound, sum, len(times), verbs, lost, failures, repeats)
	if sum != kills {
		t.Errorf("counts add up to %d, want %d", sum, kills)
	}
	if len(evs) != bound || aggregates != windows {
		t.Errorf("%d Events (%d aggregates), want %d (%d)", len(evs), aggregates, bound, windows)
	}
	if lost == 0 || failures < lost {
		t.Errorf("%d responses lost, %d publishes failed: the injection did not work", lost, failures)
	}

	// The limiter held: no stretch of time saw more requests than the
	// bucket allows (burst + qps × length, one request of slack for the
	// clock).
	worst, worstAt := 0.0, time.Duration(0)
	for i := range times {
		for j := i + 1; j < len(times); j++ {
			dt := times[j].Sub(times[i])
			allowed := burst + qps*dt.Seconds() + 1
			if over := float64(j-i+1) - allowed; over > worst {
				worst, worstAt = over, dt
			}
		}
	}
	if worst > 0 {
		t.Errorf("rate limit exceeded: %.1f requests over the bucket in a %v stretch", worst, worstAt)
	}
	if rate := float64(len(times)) / elapsed.Seconds(); rate > qps*1.05+float64(burst)/elapsed.Seconds() {
		t.Errorf("%.1f requests/s on average, limit %d", rate, qps)
	}
	t.Logf("storm: %.1f requests/s on average (limit %d, burst %d)", float64(len(times))/elapsed.Seconds(), qps, burst)
}

func (e *envt) testOutage(ctx context.Context, t *testing.T, env *envtest.Environment) {
	const (
		reports  = 40
		interval = 750 * time.Millisecond
		outage   = 30 * time.Second
	)
	pods := make([]*corev1.Pod, 4)
	for i := range pods {
		pods[i] = e.pod(ctx, t, "shop", fmt.Sprintf("out-%d", i))
	}
	var c counter
	s := e.sink(t, Config{PerWindow: 3}, &c) // default rate limit: 5/s, burst 10

	queue := make(chan sink.Delivery, reports)
	var ids []string
	var mu sync.Mutex
	failures := 0
	done := make(chan error, 1)
	go func() {
		// The outbox: in order, each report retried until delivered.
		for d := range queue {
			f, err := publish(ctx, s, d, 250*time.Millisecond)
			mu.Lock()
			failures += f
			mu.Unlock()
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		for i := range reports {
			now := time.Now()
			var r *report.Enriched
			if i%5 == 4 {
				r = globalKill(uint64(900000+100*i), now, "stress", 30000+i)
			} else {
				p := pods[i%len(pods)]
				r = containerKill(uint64(900000+100*i), now, "shop", p.Name, string(p.UID), "worker", 30000+i)
			}
			mu.Lock()
			ids = append(ids, r.ID)
			mu.Unlock()
			queue <- sink.Delivery{Report: r, Queued: now}
			time.Sleep(interval)
		}
		close(queue)
	}()

	time.Sleep(3 * time.Second)
	api := env.ControlPlane.APIServer
	stopAt := time.Now()
	if err := api.Stop(); err != nil {
		t.Fatalf("stop the API server: %v", err)
	}
	t.Logf("API server stopped in %v", time.Since(stopAt).Round(time.Millisecond))
	time.Sleep(outage)
	restart := time.Now()
	if err := api.Start(); err != nil {
		t.Fatalf("start the API server again: %v", err)
	}
	down := time.Since(stopAt)
	t.Logf("API server down for %v (restart took %v)", down.Round(time.Millisecond), time.Since(restart).Round(time.Millisecond))

	<-produced
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		t.Fatal("reports not delivered 3 minutes after the API server came back")
	}
	drained := time.Since(restart)

	var evs []corev1.Event
	for _, p := range pods {
		evs = append(evs, e.events(ctx, t, "shop", podFields(p))...)
	}
	evs = append(evs, only(e.events(ctx, t, "default", nodeFields), ids)...)
	sum := tally(t, evs, ids)
	times, verbs, _ := c.snapshot()
	t.Logf("outage: %d reports over %v, API server down %v; %d publishes failed and were retried; all delivered %v after the restart; %d Events hold %d kills; %d requests %v",
		reports, time.Duration(reports)*interval, down.Round(time.Second), failures, drained.Round(time.Millisecond), len(evs), sum, len(times), verbs)
	if sum != reports {
		t.Errorf("counts add up to %d, want %d", sum, reports)
	}
	if failures == 0 {
		t.Error("no publish failed while the API server was down")
	}
}
