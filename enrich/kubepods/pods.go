package kubepods

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/oomscope/oomscope/kube"
	"github.com/oomscope/oomscope/report"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	utilcache "k8s.io/apimachinery/pkg/util/cache"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
)

// mirrorPodAnnotation holds a static pod's config hash on its mirror pod;
// the kubelet names the static pod's cgroup after that hash, not after the
// mirror pod's UID.
const mirrorPodAnnotation = "kubernetes.io/config.mirror"

// Index names of the pod informer.
const (
	indexPodUID      = "oomscope/pod-uid"
	indexContainerID = "oomscope/container-id"
)

// containerOnlyWait bounds the wait of a lookup by container id alone. It
// is short (the container is likely not a pod's) but bridges the moment
// between a deleted pod leaving the informer's store and its handler
// putting it into the tombstones.
const containerOnlyWait = 250 * time.Millisecond

// DefaultLabelKeys are the pod labels copied into [Pod.Labels] unless
// [WithPodLabelKeys] says otherwise.
var DefaultLabelKeys = []string{
	"app",
	"app.kubernetes.io/name",
	"app.kubernetes.io/instance",
	"app.kubernetes.io/component",
	"app.kubernetes.io/part-of",
	"app.kubernetes.io/version",
	"k8s-app",
}

// StartPodCache is the whole setup in one call: it loads the API server
// configuration ([kube.LoadRESTConfig] of kubeconfig), starts a [PodCache] over
// nodeName's pods (every pod when nodeName is empty) that runs until ctx is
// done, and waits until it has synced. It returns (nil, nil) when there is
// no API server to use (check for nil before storing the result in a
// [enrich.PodLookup]). An API server that does not answer is an error after
// [DefaultSyncTimeout]; the informer is then stopped.
func StartPodCache(ctx context.Context, kubeconfig, nodeName string, opts ...PodCacheOption) (*PodCache, error) {
	cfg, err := kube.LoadRESTConfig(kubeconfig)
	if err != nil || cfg == nil {
		return nil, err
	}
	client, err := kube.NewClientset(cfg)
	if err != nil {
		return nil, err
	}
	c, err := NewPodCache(client, nodeName, opts...)
	if err != nil {
		return nil, err
	}
	runCtx, stop := context.WithCancel(ctx)
	if err := c.Start(runCtx); err != nil {
		stop()
		return nil, err
	}
	syncCtx, cancel := context.WithTimeout(runCtx, DefaultSyncTimeout)
	defer cancel()
	if !c.WaitForSync(syncCtx) {
		stop()
		<-c.Done()
		return nil, fmt.Errorf("pod cache: list pods from %s: not synced: %w", cfg.Host, context.Cause(syncCtx))
	}
	context.AfterFunc(ctx, stop) // runs until ctx is done
	return c, nil
}

// DefaultSyncTimeout bounds how long [StartPodCache] waits for the first
// list of pods.
const DefaultSyncTimeout = 30 * time.Second

// PodCacheOption configures a [PodCache].
type PodCacheOption func(*podCacheConfig)

type podCacheConfig struct {
	labelKeys    []string
	tombSize     int
	tombTTL      time.Duration
	maxWait      time.Duration
	resync       time.Duration
	ownerTTL     time.Duration
	ownerMissTTL time.Duration
	ownerSize    int
	log          zerolog.Logger
	clock        utilcache.Clock
}

// WithPodLabelKeys sets which pod labels are copied into [Pod.Labels]
// (default [DefaultLabelKeys]); none at all turns labels off.
func WithPodLabelKeys(keys ...string) PodCacheOption {
	return func(c *podCacheConfig) { c.labelKeys = append([]string(nil), keys...) }
}

// WithPodTombstones bounds the cache of recently deleted pods (and of
// container ids a restart replaced): at most size pods, each kept for ttl
// after it went away. Defaults: 1024 pods, 10 minutes.
func WithPodTombstones(size int, ttl time.Duration) PodCacheOption {
	return func(c *podCacheConfig) { c.tombSize, c.tombTTL = size, ttl }
}

// WithPodMaxWait bounds how long [PodCache.Lookup] waits for a pod or
// container the informer has not seen yet (default 3s); ctx's deadline
// applies too, whichever comes first. Zero means do not wait.
func WithPodMaxWait(d time.Duration) PodCacheOption {
	return func(c *podCacheConfig) { c.maxWait = d }
}

// WithPodResync sets the informer's resync period (default 0: none).
func WithPodResync(d time.Duration) PodCacheOption {
	return func(c *podCacheConfig) { c.resync = d }
}

// WithPodOwnerCache bounds the cache of owner lookups (ReplicaSet →
// Deployment, Job → CronJob): at most size entries, each kept for ttl
// (default 4096, 10 minutes; failed lookups are kept for a tenth of ttl).
func WithPodOwnerCache(size int, ttl time.Duration) PodCacheOption {
	return func(c *podCacheConfig) { c.ownerSize, c.ownerTTL, c.ownerMissTTL = size, ttl, ttl/10 }
}

// WithPodLogger sets the logger (default: none).
func WithPodLogger(l zerolog.Logger) PodCacheOption {
	return func(c *podCacheConfig) { c.log = l }
}

// withPodClock replaces the clock of the tombstone and owner caches (tests).
func withPodClock(clk utilcache.Clock) PodCacheOption {
	return func(c *podCacheConfig) { c.clock = clk }
}

// PodCache is a [enrich.PodLookup] backed by one shared informer over the pods of
// one node, indexed by pod UID and by container id, plus a bounded cache
// of recently deleted pods. Create it with [NewPodCache], run it with
// [PodCache.Start]. It is safe for concurrent use.
type PodCache struct {
	client   kubernetes.Interface
	nodeName string
	cfg      podCacheConfig
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandlerRegistration

	// tombPods maps a deleted pod's UID (and mirror hash) to its last
	// *corev1.Pod; tombContainers maps a container id to a *tombstone:
	// the pod as last seen with that id in its status.
	tombPods       *utilcache.LRUExpireCache
	tombContainers *utilcache.LRUExpireCache
	// owners maps ownerKey to *Owner (nil: the object has no owner
	// worth following).
	owners *utilcache.LRUExpireCache

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every pod event
	started bool
	done    chan struct{} // closed when the informer has stopped
}

// tombstone is a pod as last seen holding a container id.
type tombstone struct {
	pod *corev1.Pod
	// deleted is true when the pod itself was deleted, false when only
	// the container id left the pod's status (the container restarted
	// twice, or its status was replaced).
	deleted bool
}

// ownerKey identifies an owner object whose own owner is looked up.
type ownerKey struct {
	kind, namespace, name string
}

// NewPodCache returns a pod cache over the pods whose spec.nodeName is
// nodeName (every pod of the cluster when nodeName is empty, for a
// workstation reading a saved log). Nothing is listed before
// [PodCache.Start].
func NewPodCache(client kubernetes.Interface, nodeName string, opts ...PodCacheOption) (*PodCache, error) {
	if client == nil {
		return nil, errors.New("pod cache: nil kubernetes client")
	}
	cfg := podCacheConfig{
		labelKeys:    DefaultLabelKeys,
		tombSize:     1024,
		tombTTL:      10 * time.Minute,
		maxWait:      3 * time.Second,
		ownerSize:    4096,
		ownerTTL:     10 * time.Minute,
		ownerMissTTL: time.Minute,
		log:          zerolog.Nop(),
		clock:        realClock{},
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.tombSize < 1 || cfg.tombTTL <= 0 {
		return nil, fmt.Errorf("pod cache: tombstones need size > 0 and ttl > 0, got %d and %v", cfg.tombSize, cfg.tombTTL)
	}
	if cfg.ownerSize < 1 || cfg.ownerTTL <= 0 {
		return nil, fmt.Errorf("pod cache: owner cache needs size > 0 and ttl > 0, got %d and %v", cfg.ownerSize, cfg.ownerTTL)
	}
	if cfg.maxWait < 0 {
		cfg.maxWait = 0
	}

	var tweak func(*metav1.ListOptions)
	if nodeName != "" {
		sel := fields.OneTermEqualSelector("spec.nodeName", nodeName).String()
		tweak = func(o *metav1.ListOptions) { o.FieldSelector = sel }
	}
	inf := coreinformers.NewFilteredPodInformer(client, metav1.NamespaceAll, cfg.resync, cache.Indexers{
		indexPodUID:      podUIDIndex,
		indexContainerID: containerIDIndex,
	}, tweak)
	if err := inf.SetTransform(trimPod); err != nil {
		return nil, fmt.Errorf("pod cache: set transform: %w", err)
	}

	c := &PodCache{
		client:         client,
		nodeName:       nodeName,
		cfg:            cfg,
		informer:       inf,
		tombPods:       utilcache.NewLRUExpireCacheWithClock(cfg.tombSize, cfg.clock),
		tombContainers: utilcache.NewLRUExpireCacheWithClock(cfg.tombSize*8, cfg.clock),
		owners:         utilcache.NewLRUExpireCacheWithClock(cfg.ownerSize, cfg.clock),
		changed:        make(chan struct{}),
		done:           make(chan struct{}),
	}
	reg, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { c.broadcast() },
		UpdateFunc: c.onUpdate,
		DeleteFunc: c.onDelete,
	})
	if err != nil {
		return nil, fmt.Errorf("pod cache: add event handler: %w", err)
	}
	c.handler = reg
	return c, nil
}

// Start runs the informer until ctx is done and returns at once; see
// [PodCache.HasSynced] and [PodCache.WaitForSync]. It fails when called
// twice.
func (c *PodCache) Start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errors.New("pod cache: already started")
	}
	c.started = true
	c.cfg.log.Debug().Str("node", c.nodeName).Msg("starting pod informer")
	go func() {
		defer close(c.done)
		c.informer.RunWithContext(ctx)
	}()
	return nil
}

// Done is closed when the informer started by [PodCache.Start] has
// stopped.
func (c *PodCache) Done() <-chan struct{} { return c.done }

// HasSynced reports whether the initial pod list has been loaded and
// handled.
func (c *PodCache) HasSynced() bool {
	return c.informer.HasSynced() && c.handler.HasSynced()
}

// WaitForSync waits until [PodCache.HasSynced] or ctx is done and reports
// whether the cache synced.
func (c *PodCache) WaitForSync(ctx context.Context) bool {
	return cache.WaitForCacheSync(ctx.Done(), c.HasSynced)
}

// Lookup implements [enrich.PodLookup]. It waits, bounded by [WithPodMaxWait] and
// ctx, while the pod (or, when containerID is set, the container) is not
// known yet: the kernel reports an OOM kill before the kubelet's status
// update reaches the informer when a container dies right after it
// started. Without a pod UID the container may well not be a pod's: the
// wait is then at most containerOnlyWait. containerID may carry a runtime prefix
// ("containerd://..."). A pod or container that is still unknown at the deadline is
// (nil, nil, nil) — or only the pod when just the container is missing;
// an error means the cache was not started or had not synced in time.
func (c *PodCache) Lookup(ctx context.Context, podUID, containerID string) (*report.Pod, *report.Container, error) {
	podUID = strings.ToLower(strings.TrimSpace(podUID))
	_, containerID = splitContainerID(containerID)
	if podUID == "" && containerID == "" {
		return nil, nil, nil
	}
	c.mu.Lock()
	started := c.started
	c.mu.Unlock()
	if !started {
		return nil, nil, errors.New("pod lookup: pod cache not started")
	}

	var wait <-chan time.Time
	d := c.cfg.maxWait
	if podUID == "" {
		d = min(d, containerOnlyWait)
	}
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		wait = t.C
	}
	// The informer's sync is not an event: re-check now and then.
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()

	for {
		changed := c.changedCh() // before find: no change can be missed
		synced := c.HasSynced()
		if synced {
			m := c.find(podUID, containerID)
			if m.pod != nil && (containerID == "" || m.status != nil) {
				return c.result(ctx, m)
			}
		}
		timeout := false
		if wait == nil {
			timeout = true
		} else {
			select {
			case <-changed:
			case <-tick.C:
			case <-wait:
				timeout = true
			case <-ctx.Done():
				timeout = true
			}
		}
		if !timeout {
			continue
		}
		if !c.HasSynced() {
			if err := ctx.Err(); err != nil {
				return nil, nil, fmt.Errorf("pod lookup: pod cache not synced: %w", err)
			}
			return nil, nil, errors.New("pod lookup: pod cache not synced")
		}
		m := c.find(podUID, containerID)
		if m.pod == nil {
			return nil, nil, nil
		}
		return c.result(ctx, m)
	}
}

// match is what find found.
type match struct {
	pod     *corev1.Pod
	deleted bool
	// status and kind are the container's, when one was asked for and
	// found; status comes from statusPod (an older copy of the pod when
	// the container id has left the live pod's status).
	status *corev1.ContainerStatus
	kind   string
}

// find looks the pod and container up in the informer, then in the
// tombstones.
func (c *PodCache) find(podUID, containerID string) match {
	var m match
	if containerID != "" {
		if objs, err := c.informer.GetIndexer().ByIndex(indexContainerID, containerID); err == nil {
			for _, o := range objs {
				p, ok := o.(*corev1.Pod)
				if !ok || (podUID != "" && !podHasUID(p, podUID)) {
					continue
				}
				if st, kind := containerStatusByID(p, containerID); st != nil {
					return match{pod: p, status: st, kind: kind}
				}
			}
		}
		if v, ok := c.tombContainers.Get(containerID); ok {
			ts := v.(*tombstone)
			if podUID == "" || podHasUID(ts.pod, podUID) {
				st, kind := containerStatusByID(ts.pod, containerID)
				m = match{pod: ts.pod, deleted: ts.deleted, status: st, kind: kind}
				if !ts.deleted {
					// Prefer the live pod (the restart count moved on);
					// the container is the one of the older status.
					if live := c.podByUID(string(ts.pod.UID)); live != nil {
						m.pod = live
					}
				}
				if st != nil {
					return m
				}
			}
		}
	}
	if podUID == "" {
		return m
	}
	if p := c.podByUID(podUID); p != nil {
		return match{pod: p}
	}
	if v, ok := c.tombPods.Get(podUID); ok {
		return match{pod: v.(*corev1.Pod), deleted: true}
	}
	return m
}

// podByUID returns the live pod with that UID (or mirror hash).
func (c *PodCache) podByUID(uid string) *corev1.Pod {
	objs, err := c.informer.GetIndexer().ByIndex(indexPodUID, uid)
	if err != nil {
		return nil
	}
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			return p
		}
	}
	return nil
}

// result turns a match into the report's Pod and Container.
func (c *PodCache) result(ctx context.Context, m match) (*report.Pod, *report.Container, error) {
	p := m.pod
	pod := &report.Pod{
		Namespace:          p.Namespace,
		Name:               p.Name,
		UID:                string(p.UID),
		QoSClass:           string(p.Status.QOSClass),
		Node:               p.Spec.NodeName,
		Owner:              c.owner(ctx, p),
		Labels:             pickLabels(p.Labels, c.cfg.labelKeys),
		MemoryRequestBytes: podMemory(p, memRequest),
		MemoryLimitBytes:   podMemory(p, memLimit),
		Deleted:            m.deleted,
	}
	if m.status == nil {
		return pod, nil, nil
	}
	return pod, buildContainer(p, m.status, m.kind), nil
}

// buildContainer describes the container of status st (found by one of
// its ids) in pod p.
func buildContainer(p *corev1.Pod, st *corev1.ContainerStatus, kind string) *report.Container {
	ctr := &report.Container{
		Name:  st.Name,
		Image: st.Image,
		Kind:  kind,
	}
	// Which id matched is decided by the caller; report the id the
	// status carried, preferring the current one.
	runtime, id := splitContainerID(st.ContainerID)
	if id == "" && st.LastTerminationState.Terminated != nil {
		runtime, id = splitContainerID(st.LastTerminationState.Terminated.ContainerID)
	}
	ctr.ID, ctr.Runtime = id, runtime
	rc := st.RestartCount
	ctr.RestartCount = &rc
	now := time.Now().UTC()
	ctr.ObservedAt = &now
	switch {
	case st.State.Terminated != nil:
		t := st.State.Terminated
		ctr.State = "terminated"
		ctr.Termination = &report.Termination{Reason: t.Reason, ExitCode: t.ExitCode}
		if !t.FinishedAt.IsZero() {
			f := t.FinishedAt.UTC()
			ctr.Termination.Finished = &f
		}
	case st.State.Running != nil:
		ctr.State = "running"
		if !st.State.Running.StartedAt.IsZero() {
			s := st.State.Running.StartedAt.UTC()
			ctr.StartedAt = &s
		}
	case st.State.Waiting != nil:
		ctr.State = "waiting"
	}

	spec, image := containerSpec(p, kind, st.Name)
	if image != "" {
		ctr.Image = image
	}
	// The status' resources are what the kubelet applied (they differ from
	// the spec during an in-place resize); fall back to the spec.
	ctr.MemoryRequestBytes = memoryOf(st.Resources, memRequest)
	ctr.MemoryLimitBytes = memoryOf(st.Resources, memLimit)
	if ctr.MemoryRequestBytes == nil {
		ctr.MemoryRequestBytes = memoryOf(spec, memRequest)
	}
	if ctr.MemoryLimitBytes == nil {
		ctr.MemoryLimitBytes = memoryOf(spec, memLimit)
	}
	return ctr
}

// containerSpec returns the resources and image of pod p's container of
// that kind and name (nil, "" when there is none).
func containerSpec(p *corev1.Pod, kind, name string) (*corev1.ResourceRequirements, string) {
	var cs []corev1.Container
	switch kind {
	case report.ContainerKindApp:
		cs = p.Spec.Containers
	case report.ContainerKindInit:
		cs = p.Spec.InitContainers
	case report.ContainerKindEphemeral:
		for i := range p.Spec.EphemeralContainers {
			if c := &p.Spec.EphemeralContainers[i].EphemeralContainerCommon; c.Name == name {
				return &c.Resources, c.Image
			}
		}
	}
	for i := range cs {
		if cs[i].Name == name {
			return &cs[i].Resources, cs[i].Image
		}
	}
	return nil, ""
}

// changedCh returns the channel closed on the next pod event.
func (c *PodCache) changedCh() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.changed
}

// broadcast wakes every waiting Lookup.
func (c *PodCache) broadcast() {
	c.mu.Lock()
	defer c.mu.Unlock()
	close(c.changed)
	c.changed = make(chan struct{})
}

// onUpdate keeps the container ids that left a pod's status (a container
// that restarted twice, or a status rewritten) as tombstones.
func (c *PodCache) onUpdate(oldObj, newObj any) {
	oldPod, ok1 := oldObj.(*corev1.Pod)
	newPod, ok2 := newObj.(*corev1.Pod)
	if ok1 && ok2 && oldPod.ResourceVersion != newPod.ResourceVersion {
		now := make(map[string]bool)
		for _, id := range podContainerIDs(newPod) {
			now[id] = true
		}
		for _, id := range podContainerIDs(oldPod) {
			if !now[id] {
				c.tombContainers.Add(id, &tombstone{pod: oldPod}, c.cfg.tombTTL)
			}
		}
	}
	c.broadcast()
}

// onDelete moves a deleted pod into the tombstones.
func (c *PodCache) onDelete(obj any) {
	if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = d.Obj
	}
	p, ok := obj.(*corev1.Pod)
	if !ok {
		c.cfg.log.Warn().Type("object", obj).Msg("pod informer deleted a non-pod object")
		return
	}
	for _, uid := range podUIDIndexValues(p) {
		c.tombPods.Add(uid, p, c.cfg.tombTTL)
	}
	ts := &tombstone{pod: p, deleted: true}
	for _, id := range podContainerIDs(p) {
		c.tombContainers.Add(id, ts, c.cfg.tombTTL)
	}
	c.cfg.log.Debug().Str("pod", p.Namespace+"/"+p.Name).Str("uid", string(p.UID)).Msg("pod deleted, kept as tombstone")
	c.broadcast()
}

// owner returns the workload that owns p, following ReplicaSet →
// Deployment and Job → CronJob through the API (cached). When the
// intermediate object cannot be read, the direct owner is returned (a
// ReplicaSet's Deployment is still derived from the pod-template-hash
// label when the name tells it).
func (c *PodCache) owner(ctx context.Context, p *corev1.Pod) *report.Owner {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil {
		if len(p.OwnerReferences) == 0 {
			return nil
		}
		ref = &p.OwnerReferences[0]
	}
	direct := &report.Owner{Kind: ref.Kind, Name: ref.Name}
	switch {
	case ref.Kind == "ReplicaSet" && strings.HasPrefix(ref.APIVersion, "apps/"),
		ref.Kind == "Job" && strings.HasPrefix(ref.APIVersion, "batch/"):
	default:
		return direct
	}
	key := ownerKey{kind: ref.Kind, namespace: p.Namespace, name: ref.Name}
	if v, ok := c.owners.Get(key); ok {
		if o, _ := v.(*report.Owner); o != nil {
			return o
		}
		return fallbackOwner(p, direct)
	}
	var parent *metav1.OwnerReference
	var err error
	switch ref.Kind {
	case "ReplicaSet":
		rs, gerr := c.client.AppsV1().ReplicaSets(p.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err = gerr; err == nil {
			parent = controllerRef(rs.OwnerReferences, "Deployment")
		}
	case "Job":
		job, gerr := c.client.BatchV1().Jobs(p.Namespace).Get(ctx, ref.Name, metav1.GetOptions{})
		if err = gerr; err == nil {
			parent = controllerRef(job.OwnerReferences, "CronJob")
		}
	}
	switch {
	case err == nil && parent != nil:
		o := &report.Owner{Kind: parent.Kind, Name: parent.Name}
		c.owners.Add(key, o, c.cfg.ownerTTL)
		return o
	case err == nil:
		// A bare ReplicaSet or Job: it is the workload.
		c.owners.Add(key, direct, c.cfg.ownerTTL)
		return direct
	case apierrors.IsNotFound(err) || apierrors.IsForbidden(err):
		c.cfg.log.Debug().Err(err).Str("kind", ref.Kind).Str("name", p.Namespace+"/"+ref.Name).Msg("owner lookup failed")
		c.owners.Add(key, (*report.Owner)(nil), c.cfg.ownerMissTTL)
	default:
		// Transient (ctx, network): do not cache.
		c.cfg.log.Warn().Err(err).Str("kind", ref.Kind).Str("name", p.Namespace+"/"+ref.Name).Msg("owner lookup failed")
	}
	return fallbackOwner(p, direct)
}

// fallbackOwner is the owner when the intermediate object could not be
// read: a ReplicaSet named <deployment>-<pod-template-hash> is taken as
// that Deployment's, anything else stays the direct owner.
func fallbackOwner(p *corev1.Pod, direct *report.Owner) *report.Owner {
	if direct.Kind == "ReplicaSet" {
		if h := p.Labels["pod-template-hash"]; h != "" {
			if d, ok := strings.CutSuffix(direct.Name, "-"+h); ok && d != "" {
				return &report.Owner{Kind: "Deployment", Name: d}
			}
		}
	}
	return &report.Owner{Kind: direct.Kind, Name: direct.Name}
}

// controllerRef returns the controlling owner reference of the given kind.
func controllerRef(refs []metav1.OwnerReference, kind string) *metav1.OwnerReference {
	for i := range refs {
		if refs[i].Controller != nil && *refs[i].Controller && refs[i].Kind == kind {
			return &refs[i]
		}
	}
	return nil
}

// pickLabels copies the labels named in keys; nil when none is set.
func pickLabels(labels map[string]string, keys []string) map[string]string {
	var out map[string]string
	for _, k := range keys {
		if v, ok := labels[k]; ok {
			if out == nil {
				out = make(map[string]string)
			}
			out[k] = v
		}
	}
	return out
}

// memKind selects a memory request or limit.
type memKind int

const (
	memRequest memKind = iota
	memLimit
)

// memoryOf returns the memory request or limit of r in bytes, or nil.
func memoryOf(r *corev1.ResourceRequirements, which memKind) *int64 {
	if r == nil {
		return nil
	}
	var list corev1.ResourceList
	switch which {
	case memRequest:
		list = r.Requests
	case memLimit:
		list = r.Limits
	}
	q, ok := list[corev1.ResourceMemory]
	if !ok {
		return nil
	}
	v := q.Value()
	return &v
}

// podMemory returns the pod's memory request or limit  in bytes as the kubelet
// sizes the pod cgroup: the pod-level resources when set, else the sum over
// the app containers and sidecars (restartable init containers), raised to
// the largest init container (plus the sidecars started before it), plus
// the pod overhead. Nil when an app container or sidecar sets none (and,
// for limits, when any init container sets none: the pod then has no
// limit).
func podMemory(p *corev1.Pod, which memKind) *int64 {
	overhead := int64(0)
	if q, ok := p.Spec.Overhead[corev1.ResourceMemory]; ok {
		overhead = q.Value()
	}
	if v := memoryOf(p.Spec.Resources, which); v != nil {
		t := *v + overhead
		return &t
	}
	if len(p.Spec.Containers) == 0 {
		return nil
	}
	var sum int64
	for i := range p.Spec.Containers {
		v := memoryOf(&p.Spec.Containers[i].Resources, which)
		if v == nil {
			return nil
		}
		sum += *v
	}
	var sidecars, initMax int64
	for i := range p.Spec.InitContainers {
		ic := &p.Spec.InitContainers[i]
		v := memoryOf(&ic.Resources, which)
		sidecar := ic.RestartPolicy != nil && *ic.RestartPolicy == corev1.ContainerRestartPolicyAlways
		switch {
		case v == nil && (sidecar || which == memLimit):
			return nil
		case v == nil:
			continue
		case sidecar:
			sidecars += *v
			sum += *v
		default:
			initMax = max(initMax, *v+sidecars)
		}
	}
	t := max(sum, initMax) + overhead
	return &t
}

// trimPod drops what the cache does not need from informer objects
// (managed fields, annotations but the mirror-pod hash) to keep memory low
// on a busy node.
func trimPod(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	p.ManagedFields = nil
	if h, ok := p.Annotations[mirrorPodAnnotation]; ok {
		p.Annotations = map[string]string{mirrorPodAnnotation: h}
	} else {
		p.Annotations = nil
	}
	return p, nil
}

// podUIDIndex indexes a pod by its UID and, for a mirror pod, by its
// static pod's config hash (the name of its cgroup).
func podUIDIndex(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return podUIDIndexValues(p), nil
}

func podUIDIndexValues(p *corev1.Pod) []string {
	out := []string{strings.ToLower(string(p.UID))}
	if h := strings.ToLower(p.Annotations[mirrorPodAnnotation]); h != "" && h != out[0] {
		out = append(out, h)
	}
	return out
}

// podHasUID reports whether uid is p's UID or mirror hash.
func podHasUID(p *corev1.Pod, uid string) bool {
	for _, u := range podUIDIndexValues(p) {
		if u == uid {
			return true
		}
	}
	return false
}

// containerIDIndex indexes a pod by every container id in its status.
func containerIDIndex(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, nil
	}
	return podContainerIDs(p), nil
}

// podContainerIDs lists the container ids (without runtime prefix) of all
// app, init and ephemeral container statuses, current and last
// terminated.
func podContainerIDs(p *corev1.Pod) []string {
	var out []string
	add := func(raw string) {
		if _, id := splitContainerID(raw); id != "" {
			out = append(out, id)
		}
	}
	for _, sts := range [][]corev1.ContainerStatus{p.Status.ContainerStatuses, p.Status.InitContainerStatuses, p.Status.EphemeralContainerStatuses} {
		for i := range sts {
			add(sts[i].ContainerID)
			if t := sts[i].LastTerminationState.Terminated; t != nil {
				add(t.ContainerID)
			}
		}
	}
	return out
}

// containerStatusByID returns the status holding id (current or last
// terminated) and its container kind.
func containerStatusByID(p *corev1.Pod, id string) (*corev1.ContainerStatus, string) {
	lists := []struct {
		sts  []corev1.ContainerStatus
		kind string
	}{
		{p.Status.ContainerStatuses, report.ContainerKindApp},
		{p.Status.InitContainerStatuses, report.ContainerKindInit},
		{p.Status.EphemeralContainerStatuses, report.ContainerKindEphemeral},
	}
	for _, l := range lists {
		for i := range l.sts {
			st := &l.sts[i]
			if _, cur := splitContainerID(st.ContainerID); cur == id {
				return st, l.kind
			}
			if t := st.LastTerminationState.Terminated; t != nil {
				if rt, last := splitContainerID(t.ContainerID); last == id {
					// Report the id that matched: copy the status with
					// the previous instance's id as the current one.
					// Its state is the previous instance's: terminated.
					cp := st.DeepCopy()
					cp.ContainerID = rt + "://" + last
					cp.State = corev1.ContainerState{Terminated: t.DeepCopy()}
					return cp, l.kind
				}
			}
		}
	}
	return nil, ""
}

// splitContainerID splits "<runtime>://<id>" into the runtime name (one
// of the Runtime constants when known) and the lowercase id. An id without
// prefix has no runtime.
func splitContainerID(s string) (runtime, id string) {
	s = strings.TrimSpace(s)
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return "", strings.ToLower(s)
	}
	switch scheme {
	case "containerd":
		runtime = report.RuntimeContainerd
	case "cri-o", "crio":
		runtime = report.RuntimeCRIO
	case "docker":
		runtime = report.RuntimeDocker
	case "podman":
		runtime = report.RuntimePodman
	default:
		runtime = scheme
	}
	return runtime, strings.ToLower(rest)
}

// realClock is the wall clock for the LRU caches.
type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }
