package daemon

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/oomscope/oomscope/report"
)

// maxLabel bounds a label value taken from a report (pod names and the like
// are attacker-controlled; Prometheus takes any UTF-8 but a label must not
// grow without bound).
const maxLabel = 128

// Metrics are the daemon's Prometheus metrics. A nil *Metrics counts nothing.
type Metrics struct {
	kills      *prometheus.CounterVec
	reports    *prometheus.CounterVec
	records    prometheus.Counter
	lost       prometheus.Gauge
	enrichTime prometheus.Histogram
	parseTime  prometheus.Histogram
	latency    prometheus.Histogram
	lookups    *prometheus.CounterVec
	late       prometheus.Counter
}

// NewMetrics registers the daemon's metrics with reg.
func NewMetrics(reg prometheus.Registerer) (*Metrics, error) {
	m := &Metrics{
		kills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_kills_total",
			Help: "Processes the kernel's OOM killer killed, by the victim's pod and container and the limit's scope.",
		}, []string{"namespace", "pod", "container", "scope"}),
		reports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_reports_total",
			Help: "OOM reports published, by whether the kernel rate-limited them (partial) and whether lines were missing (incomplete).",
		}, []string{"partial", "incomplete"}),
		records: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oomscope_kmsg_records_read_total",
			Help: "Kernel log records read.",
		}),
		lost: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "oomscope_kmsg_records_lost",
			Help: "Kernel log records lost to ring-buffer overruns in this boot.",
		}),
		enrichTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oomscope_enrich_duration_seconds",
			Help:    "Time to enrich one report (cgroup snapshot, kill counters, pod lookup, diagnosis).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10),
		}),
		parseTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oomscope_parse_record_duration_seconds",
			Help:    "Time the parser takes for one kernel log record.",
			Buckets: prometheus.ExponentialBuckets(1e-7, 4, 10),
		}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "oomscope_report_latency_seconds",
			Help:    "From the kernel timestamp of a report's last line to the report stored in the outbox (live reports).",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_enrich_pod_lookups_total",
			Help: "Kubernetes pod lookups of reports in a pod, by result: hit, miss (not known to the API) or error.",
		}, []string{"result"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oomscope_parse_late_reaper_lines_total",
			Help: "oom_reaper lines read after their victim's report had been published (the reaper runs seconds later; the report does not wait), dropped.",
		}),
	}
	for _, c := range []prometheus.Collector{m.kills, m.reports, m.records, m.lost, m.enrichTime, m.parseTime, m.latency, m.lookups, m.late} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func label(s string) string {
	if s == "" {
		return "_"
	}
	return report.Escape(s, maxLabel)
}

// stored counts a report that entered the outbox.
func (m *Metrics) stored(er *report.Enriched, enrich time.Duration, latency time.Duration, haveLatency bool) {
	if m == nil {
		return
	}
	r := er.Report
	m.reports.WithLabelValues(boolLabel(r.Partial), boolLabel(r.Incomplete)).Inc()
	ns, pod, ctr, scope := "", "", "", ""
	if er.Pod != nil {
		ns, pod = er.Pod.Namespace, er.Pod.Name
		if pod == "" {
			pod = er.Pod.UID
		}
	}
	if er.Container != nil {
		ctr = er.Container.Name
	}
	if er.Diagnosis != nil {
		scope = er.Diagnosis.Scope
	}
	if n := len(r.Victims); n > 0 {
		m.kills.WithLabelValues(label(ns), label(pod), label(ctr), label(scope)).Add(float64(n))
	}
	m.enrichTime.Observe(enrich.Seconds())
	if haveLatency {
		m.latency.Observe(latency.Seconds())
	}
	if er.Pod != nil && er.Pod.UID != "" {
		switch {
		case er.Pod.Name != "":
			m.lookups.WithLabelValues("hit").Inc()
		case len(er.Enrichment.Errors) > 0 && hasLookupError(er.Enrichment.Errors):
			m.lookups.WithLabelValues("error").Inc()
		default:
			m.lookups.WithLabelValues("miss").Inc()
		}
	}
}

func hasLookupError(errs []string) bool {
	for _, e := range errs {
		if strings.HasPrefix(e, "Kubernetes pod lookup for ") {
			return true
		}
	}
	return false
}

func boolLabel(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func (m *Metrics) record(parse time.Duration) {
	if m != nil {
		m.records.Inc()
		m.parseTime.Observe(parse.Seconds())
	}
}

func (m *Metrics) lateReaper(n uint64) {
	if m != nil {
		m.late.Add(float64(n))
	}
}

func (m *Metrics) setLost(n uint64) {
	if m != nil {
		m.lost.Set(float64(n))
	}
}
