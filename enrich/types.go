package enrich

import (
	"context"

	"github.com/oomscope/oomscope/report"
)

// PodLookup finds the pod and container of a cgroup. Implementations must
// be safe for concurrent use and must return promptly when ctx is done.
type PodLookup interface {
	// Lookup returns the pod with UID podUID (which may be empty when only
	// the container id is known) and, when containerID is not empty, its
	// container with that runtime id. A pod or container that is not known
	// is (nil, nil, nil); errors are for a lookup that could not be made.
	Lookup(ctx context.Context, podUID, containerID string) (*report.Pod, *report.Container, error)
}
