"""Prometheus metrics of the read API.

Defined once per process (prometheus-client refuses duplicate registrations), shared by
every app the process builds.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
