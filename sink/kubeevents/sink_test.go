package kubeevents

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/oomscope/oomscope/sink"
)

// The fake clientset backs these small unit tests only; what the API
// server does is tested against a real one in envtest_test.go.

func newFake(t *testing.T, cfg Config, objs ...runtime.Object) (*Sink, *fake.Clientset, *prometheus.Registry) {
	t.Helper()
	cs := fake.NewClientset(objs...)
	reg := prometheus.NewRegistry()
	if cfg.NodeName == "" {
		cfg.NodeName = testNode
	}
	cfg.Registerer = reg
	s, err := New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s, cs, reg
}

func result(t *testing.T, s *Sink, r string) int {
	t.Helper()
	return int(testutil.ToFloat64(s.results.WithLabelValues(r)))
}

func TestNewConfig(t *testing.T) {
	cs := fake.NewClientset()
	for _, cfg := range []Config{{}, {NodeName: "Bad Name"}, {NodeName: strings.Repeat("a", 129)}, {NodeName: testNode, QPS: -1}} {
		if _, err := New(cs, cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(nil, Config{NodeName: testNode}); err == nil {
		t.Error("New(nil client) accepted")
	}
	s, err := New(cs, Config{NodeName: testNode})
	if err != nil {
		t.Fatal(err)
	}
	if s.Name() != "kubernetes-events" {
		t.Errorf("Name() = %q", s.Name())
	}
	c := s.cfg
	if c.QPS != DefaultQPS || c.Burst != DefaultBurst || c.Window != DefaultWindow || c.PerWindow != DefaultPerWindow ||
		c.MaxFoldedPerEvent != DefaultMaxFoldedPerEvent || c.Retention != DefaultRetention {
		t.Errorf("defaults not applied: %+v", c)
	}
	var _ sink.Sink = s
}

func TestPublishRejectsNoReport(t *testing.T) {
	s, cs, _ := newFake(t, Config{})
	ctx := context.Background()
	if err := s.Publish(ctx, sink.Delivery{}); err == nil {
		t.Error("nil report accepted")
	}
	r := containerKill(1, time.Now(), "shop", "web-1", podUID, "python3", 1)
	r.ID = ""
	if err := s.Publish(ctx, sink.Delivery{Report: r}); err == nil {
		t.Error("report without id accepted")
	}
	if n := result(t, s, ResultFailed); n != 2 {
		t.Errorf("failed = %d, want 2", n)
	}
	if len(cs.Actions()) != 0 {
		t.Errorf("requests made: %v", cs.Actions())
	}
}

func TestPublishFake(t *testing.T) {
	s, cs, reg := newFake(t, Config{})
	ctx := context.Background()
	r := containerKill(1, time.Now(), "shop", "web-1", podUID, "python3", 1)
	for range 3 {
		if err := s.Publish(ctx, sink.Delivery{Report: r}); err != nil {
			t.Fatal(err)
		}
	}
	evs, err := cs.CoreV1().Events("shop").List(ctx, metav1.ListOptions{})
	if err != nil || len(evs.Items) != 1 {
		t.Fatalf("events: %v, %v", evs, err)
	}
	ev := evs.Items[0]
	if ev.InvolvedObject.Kind != "Pod" || ev.InvolvedObject.FieldPath != "spec.containers{app}" || ev.Reason != Reason || ev.Type != corev1.EventTypeWarning {
		t.Errorf("event %+v", ev)
	}
	if n := result(t, s, ResultCreated); n != 1 {
		t.Errorf("created = %d, want 1", n)
	}
	if n, err := testutil.GatherAndCount(reg, "oomscope_kube_events_total"); err != nil || n != 5 {
		t.Errorf("oomscope_kube_events_total has %d series (%v), want 5", n, err)
	}
}

func TestRateLimitDeadline(t *testing.T) {
	s, cs, _ := newFake(t, Config{QPS: 0.5, Burst: 1})
	// Kills in a window that begins after the sink started: nothing to
	// read back, one create each.
	now := time.Now().Add(time.Minute)
	// The first publish takes the only token.
	if err := s.Publish(context.Background(), sink.Delivery{Report: containerKill(1, now, "shop", "web-1", podUID, "x", 1)}); err != nil {
		t.Fatal(err)
	}
	// The next token comes in 2s: a publish with 100ms left fails at once
	// and sends nothing.
	n := len(cs.Actions())
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := s.Publish(ctx, sink.Delivery{Report: containerKill(2, now, "shop", "web-1", podUID, "x", 2)})
	if err == nil || !strings.Contains(err.Error(), "rate limit") {
		t.Fatalf("publish with a 100ms deadline at 0.5 QPS: %v", err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("the limiter waited %v before giving up", d)
	}
	if len(cs.Actions()) != n {
		t.Errorf("requests sent past the limiter: %v", cs.Actions()[n:])
	}
	if got := result(t, s, ResultFailed); got != 1 {
		t.Errorf("failed = %d, want 1", got)
	}
}

// Unlike the two tests above, this one waits: without a deadline the
// limiter delays, it does not fail.
func TestRateLimitWaits(t *testing.T) {
	s, _, _ := newFake(t, Config{QPS: 20, Burst: 1})
	start := time.Now()
	for i := range 5 {
		if err := s.Publish(context.Background(), sink.Delivery{Report: containerKill(uint64(i), start, "shop", "web-1", podUID, "x", i)}); err != nil {
			t.Fatal(err)
		}
	}
	// 5 creates at 20/s after the first token: at least 200ms.
	if d := time.Since(start); d < 190*time.Millisecond {
		t.Errorf("5 requests at 20 QPS burst 1 took %v", d)
	}
}

func TestAPIErrorsWrapped(t *testing.T) {
	gr := schema.GroupResource{Resource: "events"}
	for _, tc := range []struct {
		err  error
		want string
		is   func(error) bool
	}{
		{apierrors.NewForbidden(gr, "x", errors.New("RBAC: access denied")), "forbidden to create Event shop/", apierrors.IsForbidden},
		{apierrors.NewInvalid(schema.GroupKind{Kind: "Event"}, "x", field.ErrorList{field.Invalid(field.NewPath("message"), "", "too long")}), "rejected Event shop/", apierrors.IsInvalid},
		{apierrors.NewServiceUnavailable("etcd down"), "create Event shop/", apierrors.IsServiceUnavailable},
	} {
		s, cs, _ := newFake(t, Config{})
		cs.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, tc.err })
		err := s.Publish(context.Background(), sink.Delivery{Report: containerKill(1, time.Now(), "shop", "web-1", podUID, "x", 1)})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !tc.is(err) {
			t.Errorf("error %v: want it to contain %q and unwrap to %v", err, tc.want, tc.err)
		}
	}
}

func TestNamespaceGoneFallsBackToNode(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid-1"}}
	for name, gone := range map[string]error{
		"missing": apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "shop"),
		"terminating": func() error {
			e := apierrors.NewForbidden(schema.GroupResource{Resource: "events"}, "x", errors.New("unable to create new content in namespace shop because it is being terminated"))
			e.ErrStatus.Details.Causes = append(e.ErrStatus.Details.Causes, metav1.StatusCause{Type: corev1.NamespaceTerminatingCause})
			return e
		}(),
	} {
		t.Run(name, func(t *testing.T) {
			s, cs, _ := newFake(t, Config{}, node)
			cs.PrependReactor("create", "events", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetNamespace() == "shop" {
					return true, nil, gone
				}
				return false, nil, nil
			})
			ctx := context.Background()
			r := containerKill(1, time.Now(), "shop", "web-1", podUID, "python3", 1)
			for range 2 {
				if err := s.Publish(ctx, sink.Delivery{Report: r}); err != nil {
					t.Fatal(err)
				}
			}
			evs, _ := cs.CoreV1().Events(corev1.NamespaceDefault).List(ctx, metav1.ListOptions{})
			if len(evs.Items) != 1 {
				t.Fatalf("%d events on the node", len(evs.Items))
			}
			ev := evs.Items[0]
			if ev.InvolvedObject.Kind != "Node" || ev.InvolvedObject.Name != testNode || ev.InvolvedObject.UID != "node-uid-1" {
				t.Errorf("involved object %+v", ev.InvolvedObject)
			}
			if !strings.Contains(ev.Message, `in container "app" of pod shop/web-1`) {
				t.Errorf("message %q does not name the pod", ev.Message)
			}
		})
	}
}

func TestHostilePodGoesToNode(t *testing.T) {
	s, cs, _ := newFake(t, Config{})
	ctx := context.Background()
	r := containerKill(1, time.Now(), "shop\n", "web\x1b[1m", podUID, "python3", 1)
	r.Container.Name = "app\u202e"
	if err := s.Publish(ctx, sink.Delivery{Report: r}); err != nil {
		t.Fatal(err)
	}
	evs, _ := cs.CoreV1().Events(corev1.NamespaceDefault).List(ctx, metav1.ListOptions{})
	if len(evs.Items) != 1 || evs.Items[0].InvolvedObject.Kind != "Node" {
		t.Fatalf("events on the node: %+v", evs.Items)
	}
	msg := evs.Items[0].Message
	checkLine(t, msg)
	if !strings.Contains(msg, `in container "app\u202e" of pod shop\n/web\x1b[1m`) {
		t.Errorf("message %q", msg)
	}
}
