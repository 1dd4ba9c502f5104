package outbox

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// metrics are the outbox's Prometheus metrics. A nil *metrics (no
// Registerer) does nothing.
type metrics struct {
	reg        prometheus.Registerer
	collectors []prometheus.Collector

	puts      prometheus.Counter
	delivered *prometheus.CounterVec
	errs      *prometheus.CounterVec
	drops     *prometheus.CounterVec
}

func newMetrics(o *Outbox, reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		reg: reg,
		puts: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "oomscope_outbox_put_total",
			Help: "Reports added to the outbox (committed and fsync'd; duplicates not counted).",
		}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_outbox_delivered_total",
			Help: "Entries a sink confirmed.",
		}, []string{"sink"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_outbox_delivery_errors_total",
			Help: "Failed delivery attempts (each is retried).",
		}, []string{"sink"}),
		drops: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "oomscope_outbox_dropped_total",
			Help: "Entries dropped by a bound before the sink confirmed them; reason is bytes (MaxBytes) or age (MaxAge).",
		}, []string{"sink", "reason"}),
	}
	gc := &gauges{
		o: o,
		depth: prometheus.NewDesc("oomscope_outbox_depth",
			"Entries held that the sink has not confirmed.", []string{"sink"}, nil),
		oldest: prometheus.NewDesc("oomscope_outbox_oldest_age_seconds",
			"Age of the oldest entry the sink has not confirmed; 0 when none.", []string{"sink"}, nil),
		bytes: prometheus.NewDesc("oomscope_outbox_bytes",
			"Body bytes held (bounded by MaxBytes).", nil, nil),
	}
	for _, c := range []prometheus.Collector{m.puts, m.delivered, m.errs, m.drops, gc} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, err
		}
		m.collectors = append(m.collectors, c)
	}
	return m, nil
}

func (m *metrics) unregister() {
	if m == nil {
		return
	}
	for _, c := range m.collectors {
		m.reg.Unregister(c)
	}
	m.collectors = nil
}

// initSinks makes the counters of the sinks exist (at 0) from the start.
func (m *metrics) initSinks(names []string) {
	if m == nil {
		return
	}
	for _, n := range names {
		m.delivered.WithLabelValues(n)
		m.errs.WithLabelValues(n)
		m.drops.WithLabelValues(n, reasonBytes)
		m.drops.WithLabelValues(n, reasonAge)
	}
}

func (m *metrics) put() {
	if m != nil {
		m.puts.Inc()
	}
}

func (m *metrics) confirmed(sink string) {
	if m != nil {
		m.delivered.WithLabelValues(sink).Inc()
	}
}

func (m *metrics) deliveryError(sink string) {
	if m != nil {
		m.errs.WithLabelValues(sink).Inc()
	}
}

func (m *metrics) dropped(sink, reason string) {
	if m != nil {
		m.drops.WithLabelValues(sink, reason).Inc()
	}
}

// gauges reads the depth and age gauges from the store at scrape time.
type gauges struct {
	o                    *Outbox
	depth, oldest, bytes *prometheus.Desc
}

func (g *gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.depth
	ch <- g.oldest
	ch <- g.bytes
}

func (g *gauges) Collect(ch chan<- prometheus.Metric) {
	o := g.o
	type sinkCur struct {
		name  string
		cur   uint64
		inMem bool
	}
	o.mu.Lock()
	if o.closed {
		o.mu.Unlock()
		return
	}
	sinks := make([]sinkCur, len(o.last))
	for i, name := range o.last {
		sinks[i].name = name
		if st := o.active[name]; st != nil {
			sinks[i].cur, sinks[i].inMem = st.acked, true
		}
	}
	o.mu.Unlock()
	now := o.cfg.Now()
	var out []prometheus.Metric
	err := o.db.View(func(tx *bolt.Tx) error {
		s := open(tx)
		out = append(out, prometheus.MustNewConstMetric(g.bytes, prometheus.GaugeValue, float64(s.readMeta().bytes)))
		var errs []error
		for _, sc := range sinks {
			if !sc.inMem {
				sc.cur = s.cursor(sc.name)
			}
			p, err := s.pendingAfter(sc.cur)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			age := 0.0
			if p.n > 0 {
				age = max(now.Sub(p.oldest).Seconds(), 0)
			}
			out = append(out,
				prometheus.MustNewConstMetric(g.depth, prometheus.GaugeValue, float64(p.n), sc.name),
				prometheus.MustNewConstMetric(g.oldest, prometheus.GaugeValue, age, sc.name))
		}
		return errors.Join(errs...)
	})
	for _, m := range out {
		ch <- m
	}
	if err != nil {
		ch <- prometheus.NewInvalidMetric(g.depth, err)
	}
}
