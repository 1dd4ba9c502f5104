package kubeevents

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/oomscope/oomscope/report"
)

// group is the kills of one (involved object, container) in one window:
// the first PerWindow get their own Event (singles), the rest are folded
// into the group's aggregate Event (parts of at most MaxFoldedPerEvent).
type group struct {
	hash  string // the group label: 16 hex of SHA-256 over the target key and the window start
	tgt   target
	start time.Time
	used  time.Time

	// singles maps the report ids given their own Event to whether that
	// Event is known to exist.
	singles map[string]bool
	parts   []*part // parts[i] is part i+1
	// reconcile is set while the group's Events on the server may hold
	// what this instance does not know (a window older than the sink).
	reconcile bool
}

// part is one aggregate Event. Its state is what this instance has
// confirmed written (plus, after a reconciliation, what the server had):
// every write sets the whole state, so repeating one is harmless.
type part struct {
	index   int
	name    string
	exists  bool   // known to be on the server
	rv      string // its resourceVersion as last seen
	hashes  []string
	set     map[string]bool
	dirty   bool // the server lacks some of hashes
	firstID string
	lastID  string
	first   time.Time
	last    time.Time
	message string
}

func (g *group) partOf(h string) *part {
	for _, p := range g.parts {
		if p.set[h] {
			return p
		}
	}
	return nil
}

func (g *group) part(index int) *part {
	for len(g.parts) < index {
		i := len(g.parts) + 1
		g.parts = append(g.parts, &part{index: i, name: aggregateEventName(g.tgt.ref.Name, g.hash, i), set: map[string]bool{}})
	}
	return g.parts[index-1]
}

// open is the part the next kill goes into.
func (g *group) open(max int) *part {
	if n := len(g.parts); n > 0 && len(g.parts[n-1].hashes) < max {
		return g.parts[n-1]
	}
	return g.part(len(g.parts) + 1)
}

// group returns the group of a kill at at, reconciled with the server when
// its window began before this instance could have seen all of it.
func (s *Sink) group(ctx context.Context, tgt target, at time.Time) (*group, error) {
	start := at.Truncate(s.cfg.Window)
	h := shortHash(tgt.key + "|" + strconv.FormatInt(start.UnixNano(), 10))
	g := s.groups[h]
	if g == nil {
		g = &group{hash: h, tgt: tgt, start: start, singles: map[string]bool{}, reconcile: start.Before(s.listBefore)}
		s.groups[h] = g
	}
	g.used = s.now()
	if g.reconcile {
		if err := s.reconcile(ctx, g); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// deliver puts the kill r into its group's Events.
func (s *Sink) deliver(ctx context.Context, r *report.Enriched, tgt target, at time.Time) error {
	g, err := s.group(ctx, tgt, at)
	if err != nil {
		return err
	}
	id := r.ID
	if done, ok := g.singles[id]; ok {
		if done {
			return nil
		}
		return s.createKill(ctx, g, r, at)
	}
	h := shortHash("report|" + id)
	if p := g.partOf(h); p != nil {
		if !p.dirty {
			return nil
		}
		return s.fold(ctx, g, r, at, h)
	}
	if len(g.singles) < s.cfg.PerWindow {
		g.singles[id] = false
		return s.createKill(ctx, g, r, at)
	}
	return s.fold(ctx, g, r, at, h)
}

func (s *Sink) base(g *group, kind string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Namespace: g.tgt.namespace,
		Labels: map[string]string{
			LabelManagedBy: Controller,
			LabelGroup:     g.hash,
			LabelEvent:     kind,
		},
	}
}

func (s *Sink) event(meta metav1.ObjectMeta, ref corev1.ObjectReference, message string, first, last time.Time, count int32) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:          meta,
		InvolvedObject:      ref,
		Reason:              Reason,
		Message:             message,
		Source:              corev1.EventSource{Component: Component, Host: s.cfg.NodeName},
		FirstTimestamp:      metav1.NewTime(first),
		LastTimestamp:       metav1.NewTime(last),
		Count:               count,
		Type:                corev1.EventTypeWarning,
		EventTime:           metav1.NewMicroTime(first),
		Action:              Action,
		ReportingController: Controller,
		ReportingInstance:   s.cfg.NodeName,
	}
}

// createKill creates the kill's own Event; one already there (an earlier
// attempt that landed, before a crash or a lost response) is as good.
func (s *Sink) createKill(ctx context.Context, g *group, r *report.Enriched, at time.Time) error {
	meta := s.base(g, eventKill)
	meta.Name = killEventName(g.tgt.ref.Name, r.ID)
	meta.Annotations = map[string]string{AnnotationReportID: r.ID}
	ev := s.event(meta, g.tgt.ref, killMessage(r, g.tgt.place), at, at, 1)
	err := s.call(ctx, "create Event "+meta.Name, func(ctx context.Context) error {
		_, err := s.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
		return err
	})
	switch {
	case err == nil:
		s.results.WithLabelValues(ResultCreated).Inc()
	case apierrors.IsAlreadyExists(err):
		s.results.WithLabelValues(ResultExists).Inc()
	default:
		return apiError("create", ev, err)
	}
	g.singles[r.ID] = true
	return nil
}

// state is a part's content as one write sets it.
type state struct {
	hashes          []string
	firstID, lastID string
	first, last     time.Time
	message         string
}

// with is p's state with the kill h (report r at at) folded in; h already
// in p is not added again.
func (p *part) with(g *group, h string, r *report.Enriched, at time.Time) state {
	st := state{hashes: p.hashes, firstID: p.firstID, first: p.first, last: p.last}
	if !p.set[h] {
		st.hashes = append(slices.Clip(p.hashes), h)
	}
	if st.firstID == "" {
		st.firstID = r.ID
	}
	st.lastID = r.ID
	if st.first.IsZero() || at.Before(st.first) {
		st.first = at
	}
	if at.After(st.last) {
		st.last = at
	}
	st.message = aggregateMessage(len(st.hashes), g.tgt.subject, st.first, r, g.tgt.place, st.firstID, st.lastID)
	return st
}

func (p *part) adopt(st state, rv string) {
	p.hashes = st.hashes
	for _, h := range st.hashes {
		p.set[h] = true
	}
	p.firstID, p.lastID, p.first, p.last, p.message = st.firstID, st.lastID, st.first, st.last, st.message
	p.exists, p.rv, p.dirty = true, rv, false
}

func (st state) annotations() map[string]string {
	return map[string]string{
		AnnotationFirstReportID: st.firstID,
		AnnotationLastReportID:  st.lastID,
		AnnotationFolded:        strings.Join(st.hashes, ","),
	}
}

// fold counts the kill h in the group's open aggregate. Each write sets
// the aggregate's whole state (count, folded list, message) from what this
// instance has confirmed plus h, conditional on the resourceVersion it last
// saw, so a repeated write changes nothing and a stale one is refused.
// When the server holds something else (AlreadyExists, Conflict: an earlier
// attempt whose response was lost, or a previous instance), the group is
// read back, merged, and the write repeated.
func (s *Sink) fold(ctx context.Context, g *group, r *report.Enriched, at time.Time, h string) error {
	for range maxCASRetries {
		p := g.partOf(h)
		if p == nil {
			p = g.open(s.cfg.MaxFoldedPerEvent)
		}
		st := p.with(g, h, r, at)
		var (
			res *corev1.Event
			err error
		)
		if !p.exists {
			meta := s.base(g, eventAggregate)
			meta.Name = p.name
			meta.Labels[LabelPart] = strconv.Itoa(p.index)
			meta.Annotations = st.annotations()
			ev := s.event(meta, g.tgt.ref, st.message, st.first, st.last, int32(len(st.hashes)))
			err = s.call(ctx, "create Event "+p.name, func(ctx context.Context) (err error) {
				res, err = s.client.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
				return err
			})
			if err == nil {
				s.folded(p, st, res.ResourceVersion, ResultCreated)
				return nil
			}
			if !apierrors.IsAlreadyExists(err) {
				return apiError("create", ev, err)
			}
		} else {
			body, merr := patchBody(st, p.rv)
			if merr != nil {
				return fmt.Errorf("kubernetes events: patch for %s: %w", p.name, merr)
			}
			err = s.call(ctx, "patch Event "+p.name, func(ctx context.Context) (err error) {
				res, err = s.client.CoreV1().Events(g.tgt.namespace).Patch(ctx, p.name, types.MergePatchType, body, metav1.PatchOptions{})
				return err
			})
			switch {
			case err == nil:
				s.folded(p, st, res.ResourceVersion, ResultUpdated)
				return nil
			case apierrors.IsNotFound(err) && !namespaceGone(err):
				// Expired (--event-ttl) or deleted: create it again.
				p.exists, p.rv = false, ""
				continue
			case !apierrors.IsConflict(err):
				return apiError("patch", &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: g.tgt.namespace, Name: p.name}}, err)
			}
		}
		s.log.Debug().Str("event", p.name).Err(err).Msg("aggregate Event differs from what this instance wrote: reconciling")
		if err := s.reconcile(ctx, g); err != nil {
			return err
		}
		if q := g.partOf(h); q != nil && !q.dirty {
			return nil // the earlier attempt had landed
		}
	}
	return fmt.Errorf("kubernetes events: aggregate Event of group %s in %s changed under every one of %d writes", g.hash, g.tgt.namespace, maxCASRetries)
}

func (s *Sink) folded(p *part, st state, rv, result string) {
	p.adopt(st, rv)
	s.results.WithLabelValues(result).Inc()
	s.results.WithLabelValues(ResultAggregated).Inc()
}

// patchBody is a JSON merge patch setting an aggregate's state, conditional
// on resourceVersion rv when known.
func patchBody(st state, rv string) ([]byte, error) {
	meta := map[string]any{"annotations": st.annotations()}
	if rv != "" {
		meta["resourceVersion"] = rv
	}
	return json.Marshal(map[string]any{
		"metadata":       meta,
		"count":          len(st.hashes),
		"message":        st.message,
		"firstTimestamp": metav1.NewTime(st.first),
		"lastTimestamp":  metav1.NewTime(st.last),
	})
}

// reconcile reads the group's Events back (one list request, by the group
// label) and merges them into what this instance knows: the kills that have
// their own Event, and each aggregate part's folded kills.
func (s *Sink) reconcile(ctx context.Context, g *group) error {
	var list *corev1.EventList
	err := s.call(ctx, "list Events of group "+g.hash, func(ctx context.Context) (err error) {
		list, err = s.client.CoreV1().Events(g.tgt.namespace).List(ctx, metav1.ListOptions{LabelSelector: LabelGroup + "=" + g.hash})
		return err
	})
	if err != nil {
		if namespaceGone(err) {
			return err
		}
		return apiError("list", &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: g.tgt.namespace, Name: "-l " + LabelGroup + "=" + g.hash}}, err)
	}
	seen := map[int]bool{}
	for i := range list.Items {
		ev := &list.Items[i]
		switch ev.Labels[LabelEvent] {
		case eventKill:
			if id := ev.Annotations[AnnotationReportID]; id != "" {
				g.singles[id] = true
			}
		case eventAggregate:
			idx, err := strconv.Atoi(ev.Labels[LabelPart])
			if err != nil || idx < 1 || idx > 1<<16 {
				continue
			}
			seen[idx] = true
			mergePart(g.part(idx), ev)
		}
	}
	for _, p := range g.parts {
		if !seen[p.index] && p.exists {
			// Gone from the server (expired or deleted): written anew.
			p.exists, p.rv, p.dirty = false, "", len(p.hashes) > 0
		}
	}
	g.reconcile = false
	return nil
}

// mergePart merges the aggregate Event ev from the server into p.
func mergePart(p *part, ev *corev1.Event) {
	server := map[string]bool{}
	if f := ev.Annotations[AnnotationFolded]; f != "" {
		for _, h := range strings.Split(f, ",") {
			server[h] = true
			if !p.set[h] {
				p.set[h] = true
				p.hashes = append(p.hashes, h)
			}
		}
	}
	p.dirty = false
	for _, h := range p.hashes {
		if !server[h] {
			p.dirty = true
			break
		}
	}
	p.exists, p.rv = true, ev.ResourceVersion
	if p.firstID == "" {
		p.firstID = ev.Annotations[AnnotationFirstReportID]
	}
	if p.lastID == "" {
		p.lastID = ev.Annotations[AnnotationLastReportID]
	}
	if t := ev.FirstTimestamp.Time; !t.IsZero() && (p.first.IsZero() || t.Before(p.first)) {
		p.first = t
	}
	if t := ev.LastTimestamp.Time; t.After(p.last) {
		p.last = t
	}
	if p.message == "" {
		p.message = ev.Message
	}
}
