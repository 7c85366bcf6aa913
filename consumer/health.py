"""What /healthz (alive) and /readyz (not stuck retrying a batch, and why) report, and the
worker's web pages (`/healthz`, `/readyz`, `/metrics`)."""

from __future__ import annotations

from time import monotonic
from typing import Any

import faust
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from consumer import metrics

#: A batch retrying longer than this makes /readyz answer 503.
STUCK_AFTER_S = 15.0


class Health:
    def __init__(self, stuck_after_s: float = STUCK_AFTER_S) -> None:
        self.stuck_after_s = stuck_after_s
        self.started_at = monotonic()
        self.batch_started_at: float | None = None
        self.last_batch_at: float | None = None
        #: Why the batch in hand is being retried (an outage, a closed index, ...).
        self.retry_reason: str | None = None

    def batch_started(self) -> None:
        self.batch_started_at = monotonic()
        self.retry_reason = None

    def batch_done(self) -> None:
        self.batch_started_at = None
        self.last_batch_at = monotonic()
        self.retry_reason = None

    def retrying(self, reason: str) -> None:
        """Called by the adapters each time they back off: the last reason is what we say."""
        self.retry_reason = reason

    @property
    def stuck(self) -> bool:
        """A batch has waited long for Elasticsearch or Kafka: it is backing off."""
        started = self.batch_started_at
        return started is not None and monotonic() - started > self.stuck_after_s

    def snapshot(self) -> dict[str, Any]:
        now = monotonic()
        last = self.last_batch_at
        snapshot: dict[str, Any] = {
            "status": "retrying" if self.stuck else "ok",
            "uptime_s": round(now - self.started_at, 1),
            "last_batch_s_ago": None if last is None else round(now - last, 1),
        }
        if self.stuck and self.retry_reason:
            snapshot["reason"] = self.retry_reason
        return snapshot


def add_pages(app: faust.App, health: Health) -> None:
    """The worker's pages on the Faust app's web server."""

    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json(health.snapshot())

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        snapshot = health.snapshot()
        return self.json(snapshot, status=503 if health.stuck else 200)

    @app.page("/metrics")
    async def prometheus(self: Any, request: Any) -> Any:
        # A plain aiohttp response: Faust's helper refuses the charset in Prometheus' type.
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
