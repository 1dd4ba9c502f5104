// Package kubeevents is the Kubernetes Event sink: one Warning Event per
// OOM kill, reason OOMKilling (node-problem-detector's), action Kill,
// reportingController oomscope, on the Pod whose container was killed or,
// for node-level kills and kills in pods the API does not know, on the
// Node. The Events are what `kubectl get events` and `kubectl describe
// pod` show; the full report stays in the other sinks (archive, NATS).
//
// Events are written through the core/v1 Events API, not events.k8s.io/v1:
// an aggregate Event's message changes with every kill folded into it, and
// the API server refuses to change an events.k8s.io/v1 Event's note after
// creation (only its series may change). Both APIs store the same objects,
// and kubectl reads them through core/v1. The Events are written directly
// with deterministic names, not through client-go's EventRecorder, whose
// spam filter drops Events silently past a burst per object.
//
// # Names, retries and restarts
//
// A kill's own Event is named <object>.oom.<16 hex of SHA-256 over the
// report id>, so a retry of a report whose Event landed (a lost response,
// a crash before the outbox recorded success) gets AlreadyExists and counts
// as delivered. An aggregate is named <object>.oom-storm.<group>-<part>,
// where the group is 16 hex of SHA-256 over the involved object, the
// container and the window's start; it lists the reports it counts in an
// annotation, and every write sets its whole state (count, list, message)
// conditional on the resourceVersion last seen, so a report is never
// counted twice. A daemon that restarts reads the Events of every window
// that began before it started back, by the group label, before it adds to
// them.
//
// # Storms
//
// Per involved object and container, the first PerWindow kills (10) of
// each Window (one minute, aligned to the clock) get their own Event; the
// later ones of that window are folded into one aggregate Event whose count
// is the number folded. A storm therefore leaves at most PerWindow+1
// Events per container and minute (plus one per MaxFoldedPerEvent kills
// beyond the first thousand of a minute), and their counts add up to the
// kills. Every request waits on a token bucket (5 per second, burst 10):
// a storm slows this sink, whose outbox keeps the backlog, and never the
// API server; a request that would wait past the context's deadline is not
// sent and Publish returns an error for the outbox to retry.
//
// See docs/kubernetes-events.md for the message format, RBAC and what
// kubectl shows.
package kubeevents
