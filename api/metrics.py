"""Prometheus metrics of the read API.

Defined once per process (prometheus-client refuses duplicate registrations), shared by
every app the process builds.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

REQUESTS = Counter(
    "audit_api_requests_total", "HTTP requests served", ["method", "endpoint", "status"]
)
LATENCY = Histogram(
    "audit_api_request_duration_seconds",
    "Time to the response headers (an export's streaming body is not included)",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
EXPORTED_LOGS = Counter("audit_api_exported_logs_total", "Logs written by exports", ["format"])
DOWNLOAD_EVENTS = Counter(
    "audit_api_download_events_total", "audit_log.download events published", ["outcome"]
)


def exposition(metrics_dir: str | None) -> bytes:
    """The text exposition of this process, or of every gunicorn worker when they share
    `metrics_dir` (the settings' `PROMETHEUS_MULTIPROC_DIR`, prometheus-client's own switch,
    which `audit-api` sets): without it a scrape would see whichever worker answered."""
    if not metrics_dir:
        return generate_latest()
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=metrics_dir)
    return generate_latest(registry)
