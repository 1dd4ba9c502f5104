package kubeevents

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/oomscope/oomscope/report"
	"github.com/oomscope/oomscope/sink"
)

// What every Event of this sink says about itself. Reason is
// node-problem-detector's, so that alert rules written for its kernel
// monitor match oomscope's Events too.
const (
	Reason     = "OOMKilling"
	Action     = "Kill"
	Controller = "oomscope"
	Component  = "oomscope"
)

// Labels and annotations on the Events. The group label selects every
// Event of one (object, container, window); the annotations are what a
// restarted daemon reads back to continue exactly where it stopped.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	LabelGroup     = "oomscope.io/group"
	LabelEvent     = "oomscope.io/event" // "kill" or "aggregate"
	LabelPart      = "oomscope.io/part"  // an aggregate's part number, from 1

	AnnotationReportID      = "oomscope.io/report-id"
	AnnotationFirstReportID = "oomscope.io/first-report-id"
	AnnotationLastReportID  = "oomscope.io/last-report-id"
	// AnnotationFolded lists the folded reports of an aggregate, as 16 hex
	// digits of SHA-256 over "report|<id>" each, comma-separated.
	AnnotationFolded = "oomscope.io/folded"
)

const (
	eventKill      = "kill"
	eventAggregate = "aggregate"
)

// Defaults of [Config].
const (
	DefaultQPS               = 5
	DefaultBurst             = 10
	DefaultWindow            = time.Minute
	DefaultPerWindow         = 10
	DefaultMaxFoldedPerEvent = 1000
	DefaultRetention         = time.Hour
)

// Metric result label values of oomscope_kube_events_total.
const (
	ResultCreated    = "created"    // an Event was created (a kill's own, or an aggregate)
	ResultUpdated    = "updated"    // an aggregate Event was patched with one more kill
	ResultAggregated = "aggregated" // a kill was folded into an aggregate Event
	ResultExists     = "exists"     // a kill's own Event was already there (a retry whose earlier attempt landed)
	ResultFailed     = "failed"     // Publish returned an error (the outbox retries)
)

// Config configures a [Sink].
type Config struct {
	// NodeName is the node the daemon runs on: every Event's
	// reportingInstance and source host, and the Node that node-level
	// kills are reported on when the report's Host is not a valid node
	// name. Required.
	NodeName string

	// QPS and Burst are the token bucket every API request of the sink
	// waits on (default 5 requests per second, burst 10), independent of
	// the client's own limiter. A request that would have to wait past the
	// context's deadline is not sent: Publish returns an error and the
	// outbox retries.
	QPS   float64
	Burst int

	// Window and PerWindow bound the Events of a storm: per involved object
	// and container, the first PerWindow kills of each Window (aligned to
	// the clock: minutes by default) get their own Event, later ones are
	// folded into one aggregate Event per window. Defaults 1m and 10.
	Window    time.Duration
	PerWindow int
	// MaxFoldedPerEvent is how many kills one aggregate Event holds before
	// a second part is started (its annotation lists them). Default 1000.
	MaxFoldedPerEvent int

	// Retention is how long the sink remembers a window after its last
	// kill (default 1h, the API server's default --event-ttl). A report of
	// a forgotten window is reconciled with the Events by one list
	// request.
	Retention time.Duration

	// Registerer, when not nil, gets oomscope_kube_events_total{result}.
	Registerer prometheus.Registerer
	// Logger, when not nil, logs namespace fallbacks and reconciliations.
	Logger *zerolog.Logger
}

// Sink writes one Kubernetes Event per OOM kill (see the package
// documentation). It is safe for concurrent use; Publish calls are
// serialised.
type Sink struct {
	client  kubernetes.Interface
	cfg     Config
	limiter *rate.Limiter
	log     zerolog.Logger
	results *prometheus.CounterVec
	now     func() time.Time

	sem chan struct{} // held by the Publish in progress

	// The state below is guarded by sem.
	groups     map[string]*group
	listBefore time.Time // a window that starts before it may have Events written by someone else
	lastEvict  time.Time
	nodeUIDs   map[string]cachedUID
	goneNS     map[string]time.Time
	firstSeen  map[string]time.Time // kill times of reports that carry none
}

type cachedUID struct {
	uid   types.UID
	until time.Time
}

// How long a namespace found terminating or missing sends its pods' kills
// to the Node without asking again, and how long a node uid (or its
// absence) is cached.
const (
	goneNSTTL     = 30 * time.Second
	nodeUIDTTL    = time.Hour
	noNodeUIDTTL  = 5 * time.Minute
	maxCASRetries = 4
)

// New returns a sink writing Events through client.
func New(client kubernetes.Interface, cfg Config) (*Sink, error) {
	if client == nil {
		return nil, errors.New("kubernetes events: no client")
	}
	if !validNodeName(cfg.NodeName) {
		return nil, fmt.Errorf("kubernetes events: node name %q is not a valid node name", cfg.NodeName)
	}
	if len(cfg.NodeName) > 128 {
		return nil, fmt.Errorf("kubernetes events: node name %q is longer than an Event's reportingInstance allows (128)", cfg.NodeName)
	}
	if cfg.QPS < 0 || cfg.Burst < 0 || cfg.Window < 0 || cfg.PerWindow < 0 || cfg.MaxFoldedPerEvent < 0 || cfg.Retention < 0 {
		return nil, errors.New("kubernetes events: negative configuration value")
	}
	if cfg.QPS == 0 {
		cfg.QPS = DefaultQPS
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Window == 0 {
		cfg.Window = DefaultWindow
	}
	if cfg.PerWindow == 0 {
		cfg.PerWindow = DefaultPerWindow
	}
	if cfg.MaxFoldedPerEvent == 0 {
		cfg.MaxFoldedPerEvent = DefaultMaxFoldedPerEvent
	}
	if cfg.Retention == 0 {
		cfg.Retention = DefaultRetention
	}
	s := &Sink{
		client:    client,
		cfg:       cfg,
		limiter:   rate.NewLimiter(rate.Limit(cfg.QPS), cfg.Burst),
		log:       zerolog.Nop(),
		now:       time.Now,
		sem:       make(chan struct{}, 1),
		groups:    make(map[string]*group),
		nodeUIDs:  make(map[string]cachedUID),
		goneNS:    make(map[string]time.Time),
		firstSeen: make(map[string]time.Time),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "oomscope",
			Name:      "kube_events_total",
			Help:      "Kubernetes Event writes of OOM kills by result: created (an Event created), updated (an aggregate Event patched), aggregated (a kill folded into an aggregate), exists (a retried kill's Event was already there), failed (a publish that returned an error and is retried).",
		}, []string{"result"}),
	}
	if cfg.Logger != nil {
		s.log = cfg.Logger.With().Str("sink", s.Name()).Logger()
	}
	s.listBefore = s.now()
	for _, r := range []string{ResultCreated, ResultUpdated, ResultAggregated, ResultExists, ResultFailed} {
		s.results.WithLabelValues(r)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(s.results); err != nil {
			return nil, fmt.Errorf("kubernetes events: register metrics: %w", err)
		}
	}
	return s, nil
}

// Name implements [sink.Sink].
func (s *Sink) Name() string { return "kubernetes-events" }

// Publish implements [sink.Sink]: it returns nil once the kill is in an
// Event (its own, or counted in an aggregate) on the API server, and an
// error otherwise. Publishing the same report again does not count it
// again.
func (s *Sink) Publish(ctx context.Context, d sink.Delivery) (err error) {
	defer func() {
		if err != nil {
			s.results.WithLabelValues(ResultFailed).Inc()
		}
	}()
	r := d.Report
	if r == nil || r.Report == nil {
		return errors.New("kubernetes events: no report")
	}
	if r.ID == "" {
		return errors.New("kubernetes events: the report has no id")
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("kubernetes events: waiting for the publish in progress: %w", ctx.Err())
	}
	defer func() { <-s.sem }()

	now := s.now()
	s.evict(now)
	at := s.killTime(d, now)
	if tgt, ok := podTarget(r); ok {
		if gone, ok := s.goneNS[tgt.namespace]; !ok || now.Sub(gone) > goneNSTTL {
			err := s.deliver(ctx, r, tgt, at)
			if !namespaceGone(err) {
				return err
			}
			s.goneNS[tgt.namespace] = now
			s.log.Warn().Str("namespace", tgt.namespace).Str("pod", tgt.ref.Name).Str("report", r.ID).Err(err).
				Msg("pod namespace is gone or terminating: OOM kill reported on the Node instead")
		}
	}
	tgt, err := s.nodeTarget(ctx, r)
	if err != nil {
		return err
	}
	return s.deliver(ctx, r, tgt, at)
}

// killTime is when the kill happened: the report's last (then first)
// record's wall time, else when it entered the outbox, else when this sink
// first saw it (remembered, so that a retry lands in the same window).
func (s *Sink) killTime(d sink.Delivery, now time.Time) time.Time {
	r := d.Report
	switch {
	case r.Last.Wall != nil && !r.Last.Wall.IsZero():
		return *r.Last.Wall
	case r.First.Wall != nil && !r.First.Wall.IsZero():
		return *r.First.Wall
	case !d.Queued.IsZero():
		return d.Queued
	}
	if t, ok := s.firstSeen[r.ID]; ok {
		return t
	}
	s.firstSeen[r.ID] = now
	return now
}

// nodeTarget is the Node target for r: the report's Host when it is a
// valid node name, else this node.
func (s *Sink) nodeTarget(ctx context.Context, r *report.Enriched) (target, error) {
	node := s.cfg.NodeName
	if validNodeName(r.Host) {
		node = r.Host
	}
	uid, err := s.nodeUID(ctx, node)
	if err != nil {
		return target{}, err
	}
	return nodeTarget(r, node, uid), nil
}

// nodeUID looks the Node's uid up (cached). A node that does not exist or
// may not be read gets an Event without uid; an API server that does not
// answer is an error.
func (s *Sink) nodeUID(ctx context.Context, name string) (types.UID, error) {
	now := s.now()
	if c, ok := s.nodeUIDs[name]; ok && now.Before(c.until) {
		return c.uid, nil
	}
	var node *corev1.Node
	err := s.call(ctx, "get Node "+name, func(ctx context.Context) (err error) {
		node, err = s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		return err
	})
	switch {
	case err == nil:
		s.nodeUIDs[name] = cachedUID{uid: node.UID, until: now.Add(nodeUIDTTL)}
		return node.UID, nil
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		s.log.Debug().Str("node", name).Err(err).Msg("node uid unknown: Events on the Node carry none")
		s.nodeUIDs[name] = cachedUID{until: now.Add(noNodeUIDTTL)}
		return "", nil
	}
	return "", fmt.Errorf("kubernetes events: look up Node %s: %w", name, err)
}

// call runs one API request after the rate limiter lets it.
func (s *Sink) call(ctx context.Context, what string, fn func(context.Context) error) error {
	if err := s.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("kubernetes events: rate limit (%g requests/s, burst %d) leaves no time to %s: %w", s.cfg.QPS, s.cfg.Burst, what, err)
	}
	return fn(ctx)
}

// namespaceGone reports whether err says the Event's namespace does not
// exist or is being deleted.
func namespaceGone(err error) bool {
	if err == nil {
		return false
	}
	if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
		return true
	}
	var st apierrors.APIStatus
	if apierrors.IsNotFound(err) && errors.As(err, &st) {
		d := st.Status().Details
		return d != nil && d.Kind == "namespaces"
	}
	return false
}

// apiError wraps an API error with what was tried, and says what to do
// about the ones a retry does not cure.
func apiError(verb string, ev *corev1.Event, err error) error {
	name := fmt.Sprintf("Event %s/%s", ev.Namespace, ev.Name)
	switch {
	case apierrors.IsForbidden(err) && !namespaceGone(err):
		return fmt.Errorf("kubernetes events: forbidden to %s %s (the service account needs create, patch and list on events in the core API group, see deploy/daemonset.yaml): %w", verb, name, err)
	case apierrors.IsInvalid(err):
		return fmt.Errorf("kubernetes events: the API server rejected %s as invalid (%s): %w", name, verb, err)
	}
	return fmt.Errorf("kubernetes events: %s %s: %w", verb, name, err)
}

// evict forgets windows not used for the retention time; a later report of
// one of them reconciles with the API first.
func (s *Sink) evict(now time.Time) {
	if now.Sub(s.lastEvict) < s.cfg.Window {
		return
	}
	s.lastEvict = now
	for h, g := range s.groups {
		if now.Sub(g.used) > s.cfg.Retention {
			delete(s.groups, h)
			if end := g.start.Add(s.cfg.Window); end.After(s.listBefore) {
				s.listBefore = end
			}
		}
	}
	for id, t := range s.firstSeen {
		if now.Sub(t) > s.cfg.Retention {
			delete(s.firstSeen, id)
		}
	}
	for ns, t := range s.goneNS {
		if now.Sub(t) > goneNSTTL {
			delete(s.goneNS, ns)
		}
	}
	for n, c := range s.nodeUIDs {
		if now.After(c.until) {
			delete(s.nodeUIDs, n)
		}
	}
}
