"""Prometheus metrics of the worker, served on AUDIT_WORKER_PORT at /metrics."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

#: Our own registry, so tests and several apps in one process do not collide on the global one.
REGISTRY = CollectorRegistry(auto_describe=True)

CONSUMED = Counter(
    "audit_worker_consumed_total", "Kafka records taken into a batch", registry=REGISTRY
)
INDEXED = Counter(
    "audit_worker_indexed_total", "Documents Elasticsearch created", registry=REGISTRY
)
ALREADY_INDEXED = Counter(
    "audit_worker_already_indexed_total",
    "Redelivered events whose document already existed (409 on create)",
    registry=REGISTRY,
)
DEAD_LETTERED = Counter(
    "audit_worker_dead_lettered_total",
    "Records sent to the dead-letter topic, by reason",
    ["reason"],
    registry=REGISTRY,
)
ID_CONFLICTS = Counter(
    "audit_worker_id_conflicts_total",
    "Events whose (partner_id, event_id) was already stored with other content (dead-lettered)",
    registry=REGISTRY,
)
DIGESTS = Counter(
    "audit_worker_digests_total",
    "Signed digests stored (one per partner per flush)",
    registry=REGISTRY,
)
DIGEST_LEAVES = Counter(
    "audit_worker_digest_leaves_total",
    "Logs covered by the stored digests (a redelivered log is covered again)",
    registry=REGISTRY,
)
BATCH_SIZE = Histogram(
    "audit_worker_batch_size",
    "Records per batch",
    buckets=(1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000),
    registry=REGISTRY,
)
BATCH_SECONDS = Histogram(
    "audit_worker_batch_seconds",
    "Time from taking a batch to committing its offsets",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
ES_RETRIES = Counter(
    "audit_worker_es_retries_total",
    "Bulk attempts retried after an outage, 429 or 5xx",
    registry=REGISTRY,
)
DLQ_RETRIES = Counter(
    "audit_worker_dlq_retries_total",
    "Dead-letter sends retried after a Kafka failure",
    registry=REGISTRY,
)
COMMIT_FAILURES = Counter(
    "audit_worker_commit_failures_total",
    "Offset commits that failed (the records will be redelivered)",
    registry=REGISTRY,
)
CONSUMER_LAG = Gauge(
    "audit_worker_consumer_lag",
    "Records behind the partition's end",
    ["topic", "partition"],
    registry=REGISTRY,
)


def render() -> bytes:
    """The exposition text for /metrics."""
    return generate_latest(REGISTRY)
