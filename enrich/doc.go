// Package enrich adds who-was-killed context to parsed OOM reports:
// Kubernetes pod and container identity from cgroup paths and the API
// server, a post-kill cgroup snapshot, and a diagnosis.
package enrich
