package metrics

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds every metric the gateway exports.
type Metrics struct {
	Registry *prometheus.Registry

	// Decisions counts policy decisions by action class and result.
	Decisions *prometheus.CounterVec
	// TokenChecks counts token verifications by result (ok or the reason).
	TokenChecks *prometheus.CounterVec
	// AuditAppend observes the latency of one group commit.
	AuditAppend prometheus.Histogram
	// AuditDurable observes how long an event waits from Enqueue until it
	// is durable (the oldest of each group commit).
	AuditDurable prometheus.Histogram
	// AuditQueueWaits counts Enqueues that found the audit queue full and
	// waited (backpressure), by result (queued, refused).
	AuditQueueWaits *prometheus.CounterVec
	// AuditQueueWait observes how long such an Enqueue waited.
	AuditQueueWait prometheus.Histogram
	// AuditEvents counts events committed to the audit log.
	AuditEvents prometheus.Counter
	// AuditErrors counts failed group commits.
	AuditErrors prometheus.Counter
	// AuditCheckpoints counts checkpoint attempts by result (signed,
	// refused, error).
	AuditCheckpoints *prometheus.CounterVec
	// AuditSigningRefused is 1 once the audit log refuses to sign because
	// the stored log is not the one it signed (tampering).
	AuditSigningRefused prometheus.Gauge
	// AuditExternalErrors counts failed writes of checkpoints outside the
	// store, by target (file, witness).
	AuditExternalErrors *prometheus.CounterVec
	// PolicyReloads counts policy reloads by result.
	PolicyReloads *prometheus.CounterVec
	// AcceptErrors counts failed accepts by listener and class (emfile,
	// enfile, econnaborted, ...); the loop backs off and keeps serving.
	AcceptErrors *prometheus.CounterVec
	// ConnectionsRefused counts connections closed before authenticating,
	// by listener and reason (unauthenticated_total,
	// unauthenticated_per_source, handshake_timeout).
	ConnectionsRefused *prometheus.CounterVec
	// SessionsRefused counts authenticated sessions refused by a session
	// cap (per_principal, total).
	SessionsRefused *prometheus.CounterVec
	// SessionsOpen is the number of authenticated sessions holding a slot.
	SessionsOpen prometheus.Gauge
	// SessionsActive is the number of open sessions by engine (postgres,
	// mcp) and connection.
	SessionsActive *prometheus.GaugeVec
	// UpstreamDialFailures counts failed upstream dials by engine,
	// connection and reason (agent.Reason*: upstream, credential,
	// unreachable, tls, no_agent, database, other).
	UpstreamDialFailures *prometheus.CounterVec
}

// New builds the metrics on a fresh registry, with Go runtime and process
// collectors.
func New() *Metrics {
	r := prometheus.NewRegistry()
	m := &Metrics{
		Registry: r,
		Decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_decisions_total", Help: "Policy decisions by action and result (allow, deny).",
		}, []string{"action", "result"}),
		TokenChecks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_token_checks_total", Help: "Token verifications by result.",
		}, []string{"result"}),
		AuditAppend: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_audit_append_seconds", Help: "Latency of one audit group commit (one durable transaction).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		AuditDurable: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_audit_durable_seconds", Help: "Time from queueing an audit event until it is durable (the oldest of each group commit).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		AuditQueueWaits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_queue_waits_total", Help: "Audit events that found the queue full and waited for room, by result (queued, refused).",
		}, []string{"result"}),
		AuditQueueWait: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "gatehouse_audit_queue_wait_seconds", Help: "How long an audit event waited for room in a full queue.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 18),
		}),
		AuditEvents: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_events_total", Help: "Audit events made durable.",
		}),
		AuditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gatehouse_audit_commit_errors_total", Help: "Audit group commits that failed and were retried.",
		}),
		AuditCheckpoints: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_checkpoints_total", Help: "Audit checkpoint attempts by result (signed, refused, error).",
		}, []string{"result"}),
		AuditSigningRefused: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_audit_signing_refused", Help: "1 when the audit log refuses to sign checkpoints because the stored log is not the one this node signed.",
		}),
		AuditExternalErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_audit_external_errors_total", Help: "Failed writes of audit checkpoints outside the store, by target (file, witness).",
		}, []string{"target"}),
		PolicyReloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_policy_reloads_total", Help: "Policy reloads by result (ok, error).",
		}, []string{"result"}),
		AcceptErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_accept_errors_total", Help: "Failed accepts by listener and class; the listener backs off and keeps serving.",
		}, []string{"listener", "class"}),
		ConnectionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_connections_refused_total", Help: "Connections closed before authenticating, by listener and reason (a cap or the handshake deadline).",
		}, []string{"listener", "reason"}),
		SessionsRefused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_sessions_refused_total", Help: "Authenticated sessions refused by a session cap (per_principal, total).",
		}, []string{"limit"}),
		SessionsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "gatehouse_sessions_open", Help: "Authenticated sessions open (each holds a slot under limits.sessions).",
		}),
		SessionsActive: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "gatehouse_sessions_active", Help: "Open sessions by engine (postgres, mcp) and connection.",
		}, []string{"engine", "connection"}),
		UpstreamDialFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gatehouse_upstream_dial_failures_total", Help: "Failed upstream dials by engine, connection and reason (upstream, credential, unreachable, tls, no_agent, database, other).",
		}, []string{"engine", "connection", "reason"}),
	}
	r.MustRegister(m.Decisions, m.TokenChecks, m.AuditAppend, m.AuditDurable, m.AuditQueueWaits, m.AuditQueueWait, m.AuditEvents, m.AuditErrors, m.PolicyReloads,
		m.AcceptErrors, m.ConnectionsRefused, m.SessionsRefused, m.SessionsOpen, m.SessionsActive, m.UpstreamDialFailures,
		m.AuditCheckpoints, m.AuditSigningRefused, m.AuditExternalErrors,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveCommit is an audit.Options.OnCommit hook.
func (m *Metrics) ObserveCommit(events int, took, latency time.Duration, err error) {
	if err != nil {
		m.AuditErrors.Inc()
		return
	}
	m.AuditAppend.Observe(took.Seconds())
	m.AuditDurable.Observe(latency.Seconds())
	m.AuditEvents.Add(float64(events))
}

// ObserveQueueWait is an audit.Options.OnWait hook.
func (m *Metrics) ObserveQueueWait(waited time.Duration, err error) {
	result := "queued"
	if err != nil {
		result = "refused"
	}
	m.AuditQueueWaits.WithLabelValues(result).Inc()
	m.AuditQueueWait.Observe(waited.Seconds())
}

// GaugeFunc registers a gauge read from f at each scrape: for values that
// live elsewhere (the audit queue's depth, agents connected).
func (m *Metrics) GaugeFunc(name, help string, f func() float64) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f))
}

// ObserveCheckpoint is an audit.Options.OnCheckpoint hook.
func (m *Metrics) ObserveCheckpoint(result string) {
	m.AuditCheckpoints.WithLabelValues(result).Inc()
	if result == "refused" {
		m.AuditSigningRefused.Set(1)
	}
}

// ObserveExternal is an audit.Options.OnExternal hook.
func (m *Metrics) ObserveExternal(target string, err error) {
	if err != nil {
		m.AuditExternalErrors.WithLabelValues(target).Inc()
	}
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}
