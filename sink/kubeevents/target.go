package kubeevents

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/oomscope/oomscope/report"
)

// nodeEventNamespace is where Events on a Node go, as the kubelet's do.
const nodeEventNamespace = corev1.NamespaceDefault

// target is the object an Event is about and how its kills are grouped.
type target struct {
	// namespace is the Event's own namespace.
	namespace string
	ref       corev1.ObjectReference
	place     placement
	// key identifies the (object, container) whose kills aggregate
	// together; subject names it in the aggregate's message.
	key     string
	subject string
}

// fieldPath is the container's path in the pod spec, the way the kubelet
// names it in its Events.
func fieldPath(c *report.Container) string {
	// Container names from the API are DNS labels; anything else is not
	// put into the reference (the message shows it, escaped).
	if c == nil || len(validation.IsDNS1123Label(c.Name)) > 0 {
		return ""
	}
	switch c.Kind {
	case "init":
		return "spec.initContainers{" + c.Name + "}"
	case "ephemeral":
		return "spec.ephemeralContainers{" + c.Name + "}"
	}
	return "spec.containers{" + c.Name + "}"
}

// podAddressable reports whether an Event can be about r's pod: the API
// knows it (it has a name), and its namespace and name are valid (they
// are when they come from the API).
func podAddressable(r *report.Enriched) bool {
	return podKnown(r) && len(validation.IsDNS1123Label(r.Pod.Namespace)) == 0 &&
		len(validation.IsDNS1123Subdomain(r.Pod.Name)) == 0
}

// podTarget is the Pod r names; ok is false when an Event cannot be about
// it (see podAddressable).
func podTarget(r *report.Enriched) (target, bool) {
	if !podAddressable(r) {
		return target{}, false
	}
	p := r.Pod
	ref := corev1.ObjectReference{
		APIVersion: "v1",
		Kind:       "Pod",
		Namespace:  p.Namespace,
		Name:       p.Name,
		UID:        types.UID(kubeletPodUID(r)),
		FieldPath:  fieldPath(r.Container),
	}
	return target{
		namespace: p.Namespace,
		ref:       ref,
		place:     onPod,
		key:       joinKey("pod", p.Namespace, p.Name, p.UID, containerKey(r.Container)),
		subject:   subject(r, onPod),
	}, true
}

// kubeletPodUID is the pod uid as the kubelet's own Events name it, which
// is what kubectl describe pod looks for: the API's uid, except for a
// static pod, whose Events carry its config hash (the uid in its cgroup
// path; the mirror pod in the API has another uid and the hash in its
// kubernetes.io/config.mirror annotation).
func kubeletPodUID(r *report.Enriched) string {
	if cg := r.Cgroups; cg != nil {
		for _, c := range []*report.CgroupPath{cg.Victim, cg.Limiting} {
			if c != nil && c.PodUID != "" {
				if isConfigHash(c.PodUID) && !strings.EqualFold(c.PodUID, r.Pod.UID) {
					return c.PodUID
				}
				break
			}
		}
	}
	return r.Pod.UID
}

// isConfigHash reports whether s is a static pod's config hash (32 hex
// digits) rather than a UUID.
func isConfigHash(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// nodeTarget is the Node, for a kill outside any pod, in a pod the API does
// not know, or in a pod whose namespace is gone.
func nodeTarget(r *report.Enriched, node string, uid types.UID) target {
	ref := corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: node, UID: uid}
	var what string
	switch {
	case r.Pod != nil || r.Container != nil:
		ns, name, puid := "", "", ""
		if r.Pod != nil {
			ns, name, puid = r.Pod.Namespace, r.Pod.Name, r.Pod.UID
		}
		what = joinKey("pod", ns, name, puid, containerKey(r.Container))
	default:
		scope := ""
		if r.Diagnosis != nil {
			scope = r.Diagnosis.Scope
		}
		switch scope {
		case report.ScopeNode:
			what = joinKey("scope", scope)
		case report.ScopeCpuset:
			what = joinKey("scope", scope, r.MemsAllowed)
		case report.ScopeMempolicy:
			what = joinKey("scope", scope, r.Nodemask)
		default:
			what = joinKey("cgroup", r.OOMMemcg)
		}
	}
	return target{
		namespace: nodeEventNamespace,
		ref:       ref,
		place:     onNode,
		key:       joinKey("node", node, what),
		subject:   subject(r, onNode),
	}
}

func containerKey(c *report.Container) string {
	if c == nil {
		return ""
	}
	if c.Name != "" {
		return "name=" + c.Kind + "/" + c.Name
	}
	return "id=" + c.ID
}

// joinKey joins parts unambiguously (each is length-prefixed).
func joinKey(parts ...string) string {
	var b strings.Builder
	for _, p := range parts {
		b.WriteString(strconv.Itoa(len(p)))
		b.WriteByte(':')
		b.WriteString(p)
		b.WriteByte('|')
	}
	return b.String()
}

// shortHash is 16 hex digits (64 bits) of SHA-256 over s.
func shortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:8])
}

// maxBase is the longest object-name prefix of an Event name: with
// ".oom-storm." (11), 16 hex and "-<part>" the name stays well below the
// 253 characters of a DNS subdomain.
const maxBase = 200

// nameBase is the Event name's prefix: the involved object's name,
// lowercased, cut to maxBase, and made a valid DNS subdomain ("oomscope"
// when nothing usable is left).
func nameBase(obj string) string {
	b := []byte(strings.ToLower(obj))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	s := string(b)
	if len(s) > maxBase {
		s = s[:maxBase]
	}
	// Labels of a subdomain begin and end with an alphanumeric.
	parts := strings.Split(s, ".")
	kept := parts[:0]
	for _, p := range parts {
		p = strings.Trim(p, "-")
		if p != "" {
			kept = append(kept, p)
		}
	}
	s = strings.Join(kept, ".")
	if s == "" || len(validation.IsDNS1123Subdomain(s)) > 0 {
		return "oomscope"
	}
	return s
}

// killEventName is the name of a kill's own Event: the same for the same
// report id, whichever instance of the daemon writes it.
func killEventName(obj, reportID string) string {
	return nameBase(obj) + ".oom." + shortHash("report|"+reportID)
}

// aggregateEventName is the name of an aggregate Event: part part (from 1)
// of the aggregate of one group (object, container, window).
func aggregateEventName(obj, group string, part int) string {
	return nameBase(obj) + ".oom-storm." + group + "-" + strconv.Itoa(part)
}

// validNodeName reports whether s can name a Node.
func validNodeName(s string) bool {
	return s != "" && len(validation.IsDNS1123Subdomain(s)) == 0
}
