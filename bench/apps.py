"""The project's two processes as the benchmarks run them (started with
`deploy.local.processes.Service`): their environment, the token secret and signing key they
trust, and an HTTP client for the API."""

from __future__ import annotations

import http.client
import urllib.parse
from collections.abc import Mapping, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api.devtoken import mint_token as mint_dev_token
from bench.services import ES_URL, KAFKA
from schemas.integrity import private_pem

JWT_SECRET = "bench-only-secret-0123456789abcdef0123456789abcdef"  # noqa: S105
#: The worker signs its integrity digests with this key (a fresh one per benchmark run).
BENCH_SIGNING_KEY = private_pem(Ed25519PrivateKey.generate())


def mint_token(
    partner_id: str, role: str = "owner", org_ids: Sequence[str] = (), ttl: int = 7200
) -> str:
    """A token the API started with `api_env` accepts (`api.devtoken.mint_token`)."""
    return mint_dev_token(
        JWT_SECRET,
        sub=f"bench-{role}",
        partner_id=partner_id,
        role=role,
        org_ids=org_ids,
        ttl=ttl,
        name="Bench User",
    )


def _services_env(prefix: str) -> dict[str, str]:
    """What both processes read: where Kafka and Elasticsearch are, and the indices' prefix."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "ELASTICSEARCH_URL": ES_URL,
        "AUDIT_INDEX_PREFIX": prefix,
    }


def api_env(prefix: str, events_topic: str, port: int) -> dict[str, str]:
    return {
        **_services_env(prefix),
        "AUDIT_JWT_SECRET": JWT_SECRET,
        "AUDIT_ENV": "development",
        "AUDIT_API_PORT": str(port),
        "AUDIT_EVENTS_TOPIC": events_topic,
    }


def worker_env(prefix: str, topic: str, port: int) -> dict[str, str]:
    return {
        **_services_env(prefix),
        "AUDIT_TOPICS": topic,
        "AUDIT_DLQ_TOPIC": f"{topic}.dlq",
        "AUDIT_GROUP_ID": f"{topic}-group",
        "AUDIT_WORKER_PORT": str(port),
        "AUDIT_SIGNING_KEY": BENCH_SIGNING_KEY,
    }


class ApiClient:
    """One keep-alive HTTP connection to the API (one per client thread)."""

    def __init__(self, base_url: str, timeout: float = 120) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._host, self._port, self._timeout = parts.hostname or "127.0.0.1", parts.port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, token: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                reply = self._conn.getresponse()
                body = reply.read()
                if reply.getheader("Connection", "").lower() == "close":
                    self.close()
                return reply.status, body
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def api_path(path: str, params: Sequence[tuple[str, str]] | Mapping[str, str]) -> str:
    query = urllib.parse.urlencode(list(params.items()) if isinstance(params, Mapping) else params)
    return f"{path}?{query}" if query else path
