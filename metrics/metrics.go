// Package metrics holds the deployer's Prometheus metrics: what a worker's
// deployments cost, step by step, how its caches, pool and chains fare. Every name
// starts with deployer_. A process makes one registry (NewRegistry) and hands it to
// the roles it runs; the API serves it on /metrics, a worker apart on METRICS_ADDR.
package metrics

import (
	"context"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/deployer-dev/deployer/jobs"
	"github.com/deployer-dev/deployer/tasks"
)

// namespace prefixes every metric of ours.
const namespace = "deployer"

// NewRegistry is a process's registry, with the Go runtime's and the process's
// own metrics.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// durationBuckets span a warm deployment (under a second) to a cold one that builds
// an image and installs dependencies (minutes).
var durationBuckets = []float64{0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60, 120, 300, 600}

// Deployments are a worker's metrics of the deployments it ran.
type Deployments struct {
	duration *prometheus.HistogramVec
	phase    *prometheus.HistogramVec
	within   *prometheus.HistogramVec
	image    *prometheus.CounterVec
	compile  *prometheus.CounterVec
}

// NewDeployments registers the deployments' metrics with reg.
func NewDeployments(reg prometheus.Registerer) *Deployments {
	d := &Deployments{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "deployment_duration_seconds",
			Help:    "Deployments from their enqueue to their record, by network, framework, outcome and cache state.",
			Buckets: durationBuckets,
		}, []string{"network", "framework", "outcome", "image_cache", "container", "compile_cache"}),
		phase: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "deployment_phase_seconds",
			Help:    "Each phase of a deployment (they add up to its duration), by framework.",
			Buckets: durationBuckets,
		}, []string{"phase", "framework"}),
		within: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "deployment_within_seconds",
			Help:    "Parts of a deployment's phases spent in one program: forge (or Hardhat), the gateway.",
			Buckets: durationBuckets,
		}, []string{"part", "framework"}),
		image: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "image_cache_lookups_total",
			Help: "Runner image resolutions by deployments, by result (hit, miss).",
		}, []string{"result"}),
		compile: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "compile_cache_lookups_total",
			Help: "Compile cache lookups by deployments that got that far, by result (hit, miss).",
		}, []string{"result"}),
	}
	reg.MustRegister(d.duration, d.phase, d.within, d.image, d.compile)
	return d
}

// Outcomes of an attempt, as the outcome label names them.
const (
	Completed = "completed"
	Failed    = "failed"
	Canceled  = "canceled"
	Retried   = "retried"
	Requeued  = "requeued"
)

// Observe records one attempt of a deployment: how it ended and what it cost. An
// attempt with no outcome ("") ran nothing, and is not recorded.
func (d *Deployments) Observe(network, framework, outcome string, r jobs.Report) {
	if d == nil || outcome == "" {
		return
	}
	t, c := r.Timings, r.Cache
	d.duration.WithLabelValues(network, framework, outcome, hitMiss(c.ImageHit), reused(c.ContainerReused), hitMiss(c.CompileHit)).
		Observe(ms(t.Total))
	for _, p := range t.Phases() {
		if p.MS > 0 {
			d.phase.WithLabelValues(p.Name, framework).Observe(ms(p.MS))
		}
	}
	if t.Within.Forge > 0 {
		d.within.WithLabelValues("forge", framework).Observe(ms(t.Within.Forge))
	}
	if t.Within.Gateway > 0 {
		d.within.WithLabelValues("gateway", framework).Observe(ms(t.Within.Gateway))
	}
	if t.Image > 0 || c.ImageHit {
		d.image.WithLabelValues(hitMiss(c.ImageHit)).Inc()
	}
	if t.Compile > 0 || c.CompileHit {
		d.compile.WithLabelValues(hitMiss(c.CompileHit)).Inc()
	}
}

func ms(v int64) float64 { return float64(v) / 1000 }

func hitMiss(hit bool) string {
	if hit {
		return "hit"
	}
	return "miss"
}

func reused(r bool) string {
	if r {
		return "reused"
	}
	return "new"
}

// PoolSource is what the pool collector reads: a worker's pool as it is now.
type PoolSource interface {
	Snapshot() tasks.PoolSnapshot
}

// ChainSource lists a worker's managed chains as they are now.
type ChainSource func(ctx context.Context) ([]tasks.ChainStatus, error)

// worker collects what a worker holds, read at each scrape.
type worker struct {
	id     string
	pool   PoolSource
	chains ChainSource
	idle   *prometheus.Desc
	busy   *prometheus.Desc
	reuse  *prometheus.Desc
	up     *prometheus.Desc
}

// RegisterWorker registers the collector of a worker's pool (idle and busy
// containers per key, reuse) and chains (up or not).
func RegisterWorker(reg prometheus.Registerer, id string, pool PoolSource, chains ChainSource) {
	label := prometheus.Labels{"worker": id}
	reg.MustRegister(&worker{id: id, pool: pool, chains: chains,
		idle:  prometheus.NewDesc(namespace+"_pool_idle_containers", "Idle job containers in a worker's pool, per pool key.", []string{"key"}, label),
		busy:  prometheus.NewDesc(namespace+"_pool_busy_containers", "Job containers running a job, per pool key.", []string{"key"}, label),
		reuse: prometheus.NewDesc(namespace+"_pool_leases_total", "Container leases, by whether a warm container served them.", []string{"result"}, label),
		up:    prometheus.NewDesc(namespace+"_chain_up", "1 when the network's managed chain runs and answers.", []string{"network"}, label),
	})
}

func (w *worker) Describe(ch chan<- *prometheus.Desc) {
	ch <- w.idle
	ch <- w.busy
	ch <- w.reuse
	ch <- w.up
}

func (w *worker) Collect(ch chan<- prometheus.Metric) {
	s := w.pool.Snapshot()
	for _, k := range s.Keys {
		ch <- prometheus.MustNewConstMetric(w.idle, prometheus.GaugeValue, float64(k.Idle), k.Key)
		ch <- prometheus.MustNewConstMetric(w.busy, prometheus.GaugeValue, float64(k.Busy), k.Key)
	}
	ch <- prometheus.MustNewConstMetric(w.reuse, prometheus.CounterValue, float64(s.Hits), "reused")
	ch <- prometheus.MustNewConstMetric(w.reuse, prometheus.CounterValue, float64(s.Misses), "new")
	if w.chains == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cs, err := w.chains(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(w.up, err)
		return
	}
	for _, c := range cs {
		up := 0.0
		if c.Healthy {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(w.up, prometheus.GaugeValue, up, c.Network)
	}
}

// API are the API's metrics of the requests it answers.
type API struct {
	requests *prometheus.HistogramVec
}

// NewAPI registers the API's metrics with reg: its requests, and the queues as
// asynq's inspector sees them (asynq's own collector, its names prefixed with
// deployer_), which only the API, reading Redis, can see whole.
func NewAPI(reg prometheus.Registerer, queues prometheus.Collector) *API {
	a := &API{requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace, Name: "http_request_duration_seconds",
		Help:    "API requests by route, method and status code (a long poll's or a stream's wait included).",
		Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"route", "method", "code"})}
	reg.MustRegister(a.requests)
	if queues != nil {
		prometheus.WrapRegistererWithPrefix(namespace+"_", reg).MustRegister(queues)
	}
	return a
}

// ObserveRequest records one request; route is the route's pattern, never the path
// (ids would make a series each).
func (a *API) ObserveRequest(route, method string, code int, d time.Duration) {
	if a == nil {
		return
	}
	a.requests.WithLabelValues(route, method, strconv.Itoa(code)).Observe(d.Seconds())
}
