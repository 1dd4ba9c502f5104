package natssink

import (
	"crypto/sha256"
	"encoding/hex"

	"github.com/oomscope/oomscope/report"
)

// SubjectPrefix is the part of every report subject before the node token.
const SubjectPrefix = "oomscope.v1.kill."

// MaxTokenLen is the most bytes a subject token made from a name can have.
// A longer name is cut and given a hash of the whole name (see [Subject]).
const MaxTokenLen = 64

// MaxHeaderLen is the most bytes an Oomscope-* header value can have; a
// longer value is cut the same way as a subject token.
const MaxHeaderLen = 256

// maxMsgIDLen bounds the Nats-Msg-Id header. Report ids are at most about
// 80 bytes ("<boot id>/<seq>" or "sha256:<64 hex>").
const maxMsgIDLen = 128

// hashLen is how many hex digits of SHA-256 mark a cut token.
const hashLen = 10

// Subject returns the subject a report is published on:
//
//	oomscope.v1.kill.<node>.<namespace>.<pod>
//
// node is the report's Host (or, when that is empty, the node the pod
// record names); namespace and pod are Pod.Namespace and Pod.Name. A pod
// whose name is unknown (only its UID came from the cgroup path) has
// namespace "_" and its UID as pod token. A node-level kill (no pod) has
// "_" for both, and an unknown node is "_".
//
// Names come from hostile input (a pod name is whatever a tenant chose, a
// node name whatever the kernel log said), so each becomes exactly one
// token: every byte that is not printable ASCII, or is '.', '*' or '>', is
// replaced by '_'; an empty name becomes "_"; a name longer than
// [MaxTokenLen] bytes is cut to leave room for "-" and 10 hex digits of the
// SHA-256 of the whole original name, so that two long names sharing a
// prefix stay distinct. The result always has exactly six tokens and is a
// valid literal NATS subject (no wildcards).
func Subject(r *report.Enriched) string {
	var node, ns, pod string
	if r != nil {
		if r.Report != nil {
			node = r.Host
		}
		if r.Pod != nil {
			ns, pod = r.Pod.Namespace, r.Pod.Name
			if pod == "" {
				ns, pod = "", r.Pod.UID
			}
			if node == "" {
				node = r.Pod.Node
			}
		}
	}
	return SubjectPrefix + Token(node) + "." + Token(ns) + "." + Token(pod)
}

// Token turns a name into one subject token as [Subject] describes.
func Token(name string) string {
	return clean(name, MaxTokenLen, tokenByte)
}

// HeaderValue makes s safe as a header value: every byte that is not
// printable ASCII (so CR, LF, every control byte and every byte of a
// non-ASCII character) or is a space becomes '_', the empty string becomes
// "_", and a value longer than [MaxHeaderLen] bytes is cut and marked with
// a hash as a token is.
func HeaderValue(s string) string {
	return clean(s, MaxHeaderLen, headerByte)
}

// msgID is the Nats-Msg-Id for a report id: a header value, bounded more
// tightly.
func msgID(id string) string {
	return clean(id, maxMsgIDLen, headerByte)
}

func tokenByte(c byte) bool {
	return c > ' ' && c < 0x7f && c != '.' && c != '*' && c != '>'
}

func headerByte(c byte) bool {
	return c > ' ' && c < 0x7f
}

// clean maps every byte of s that ok rejects to '_' and bounds the result
// to max bytes, replacing the tail of a longer s by "-" and a hash of s.
func clean(s string, max int, ok func(byte) bool) string {
	if s == "" {
		return "_"
	}
	n := len(s)
	cut := n > max
	if cut {
		n = max - 1 - hashLen
	}
	b := make([]byte, 0, min(len(s), max))
	for i := range n {
		c := s[i]
		if !ok(c) {
			c = '_'
		}
		b = append(b, c)
	}
	if cut {
		sum := sha256.Sum256([]byte(s))
		b = append(b, '-')
		b = append(b, hex.EncodeToString(sum[:])[:hashLen]...)
	}
	return string(b)
}
