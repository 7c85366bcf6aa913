"""API settings, read from the environment once per process.

Nothing else in `api/` reads `os.environ`: the app factory takes a `Settings` so tests can
build one explicitly, and production fails fast here with one readable message instead of
failing on the first request.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Only for development; production refuses to start with it (see `Settings.from_env`).
DEV_JWT_SECRET = "dev-only-audit-jwt-secret-do-not-use-in-production"  # noqa: S105

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32

ENVIRONMENTS = ("development", "production")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable API; the message says what to set."""


@dataclass(frozen=True)
class Settings:
    env: str = "development"
    jwt_secret: str | None = DEV_JWT_SECRET
    jwt_public_key: str | None = None
    cursor_secret: bytes = b""
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_api_key: str | None = None
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_ca_certs: str | None = None
    index_prefix: str = "audit-logs"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_config: Mapping[str, str] = field(default_factory=dict, repr=False)
    events_topic: str = "audit.events"
    api_port: int = 8080

    def __post_init__(self) -> None:
        if not self.cursor_secret:
            # Derived rather than random so every gunicorn worker (and every replica)
            # accepts the cursors the others issued.
            base = (self.jwt_secret or self.jwt_public_key or "").encode()
            derived = hashlib.sha256(b"audit-cursor-v1:" + base).digest()
            object.__setattr__(self, "cursor_secret", derived)

    @property
    def jwt_algorithms(self) -> tuple[str, ...]:
        algorithms: list[str] = []
        if self.jwt_secret:
            algorithms.append("HS256")
        if self.jwt_public_key:
            algorithms.append("RS256")
        return tuple(algorithms)

    def elasticsearch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `elasticsearch.Elasticsearch(...)`."""
        kwargs: dict[str, Any] = {"hosts": [self.elasticsearch_url]}
        if self.elasticsearch_api_key:
            kwargs["api_key"] = self.elasticsearch_api_key
        elif self.elasticsearch_username:
            kwargs["basic_auth"] = (self.elasticsearch_username, self.elasticsearch_password or "")
        if self.elasticsearch_ca_certs:
            kwargs["ca_certs"] = self.elasticsearch_ca_certs
        return kwargs

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env_map = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env_map.get(name, "").strip()
            return value or None

        env = (get("AUDIT_ENV") or "development").lower()
        if env not in ENVIRONMENTS:
            raise ConfigError(f"AUDIT_ENV must be one of {', '.join(ENVIRONMENTS)}, got {env!r}")

        secret = get("AUDIT_JWT_SECRET")
        public_key = _read_key(get("AUDIT_JWT_PUBLIC_KEY"))
        if env == "production":
            if not secret and not public_key:
                raise ConfigError(
                    "AUDIT_ENV=production needs AUDIT_JWT_SECRET (HS256, at least "
                    f"{MIN_HS256_SECRET_BYTES} bytes) or AUDIT_JWT_PUBLIC_KEY (RS256 PEM)"
                )
            if secret == DEV_JWT_SECRET:
                raise ConfigError("AUDIT_ENV=production refuses the development JWT secret")
        elif not secret and not public_key:
            secret = DEV_JWT_SECRET
        if secret and len(secret.encode()) < MIN_HS256_SECRET_BYTES:
            raise ConfigError(
                f"AUDIT_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes for HS256"
            )
        if public_key and "BEGIN PUBLIC KEY" not in public_key:
            raise ConfigError("AUDIT_JWT_PUBLIC_KEY must be a PEM public key (or a path to one)")

        cursor_secret = get("AUDIT_CURSOR_SECRET")
        port_text = get("AUDIT_API_PORT") or "8080"
        try:
            port = int(port_text)
        except ValueError:
            raise ConfigError(f"AUDIT_API_PORT must be an integer, got {port_text!r}") from None

        return cls(
            env=env,
            jwt_secret=secret,
            jwt_public_key=public_key,
            cursor_secret=cursor_secret.encode() if cursor_secret else b"",
            elasticsearch_url=get("ELASTICSEARCH_URL") or "http://127.0.0.1:9200",
            elasticsearch_api_key=get("ELASTICSEARCH_API_KEY"),
            elasticsearch_username=get("ELASTICSEARCH_USERNAME"),
            elasticsearch_password=get("ELASTICSEARCH_PASSWORD"),
            elasticsearch_ca_certs=get("ELASTICSEARCH_CA_CERTS"),
            index_prefix=get("AUDIT_INDEX_PREFIX") or "audit-logs",
            kafka_bootstrap_servers=get("KAFKA_BOOTSTRAP_SERVERS") or "127.0.0.1:9092",
            kafka_config=_kafka_config(get),
            events_topic=get("AUDIT_EVENTS_TOPIC") or "audit.events",
            api_port=port,
        )


def _read_key(value: str | None) -> str | None:
    """Accept the PEM itself or a path to it (a multi-line PEM is awkward in many env files)."""
    if value is None or "BEGIN" in value:
        return value
    try:
        with open(value, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"AUDIT_JWT_PUBLIC_KEY: cannot read {value!r}: {exc.strerror}") from None


def _kafka_config(get: Any) -> dict[str, str]:
    names = {
        "KAFKA_SECURITY_PROTOCOL": "security.protocol",
        "KAFKA_SASL_MECHANISM": "sasl.mechanism",
        "KAFKA_SASL_USERNAME": "sasl.username",
        "KAFKA_SASL_PASSWORD": "sasl.password",
        "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    }
    return {key: value for env_name, key in names.items() if (value := get(env_name))}
