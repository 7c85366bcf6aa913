"""API settings, read from the environment once per process.

Nothing else in `api/` reads `os.environ`: the app factory takes a `Settings` so tests can
build one explicitly, and production fails fast here with one readable message instead of
failing on the first request. Kafka and Elasticsearch options, their rules and the error type
are `schemas.config`'s, the same as the worker's.

Secure by default: what production needs (a real key, its own cursor secret, the expected
audience and issuer) refuses to start when forgotten; the development secret, which is in
this repository, is refused whenever the API listens beyond loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.config import (
    DEFAULT_EVENTS_TOPIC,
    DEFAULT_INDEX_PREFIX,
    DEFAULT_KAFKA_BOOTSTRAP_SERVERS,
    MAX_PORT,
    ElasticsearchFields,
    Env,
    KafkaOptions,
    elasticsearch_fields,
)
from schemas.config import ConfigError as ConfigError  # one error type; callers catch it here

# Only for development; refused in production and on any bind that is not loopback.
DEV_JWT_SECRET = "dev-only-audit-jwt-secret-do-not-use-in-production"  # noqa: S105

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32
MIN_CURSOR_SECRET_BYTES = 32

ENVIRONMENTS = ("development", "production")
DEFAULT_API_PORT = 8080
#: prometheus-client's own switch to multiprocess mode (`audit-api` sets it for gunicorn).
METRICS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


@dataclass(frozen=True)
class Settings(ElasticsearchFields):
    env: str = "development"
    # Secrets are kept out of reprs (and so out of logs and tracebacks).
    jwt_secret: str | None = field(default=DEV_JWT_SECRET, repr=False)
    jwt_public_key: str | None = None
    #: Checked when set (`aud` and `iss` claims); production requires both.
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    #: Clock skew tolerated on `exp`, `iat` and `nbf`.
    jwt_leeway_s: int = 30
    #: A token valid for longer than this (from `iat`, or from now without one) is refused.
    jwt_max_lifetime_s: int = 24 * 3600
    cursor_secret: bytes = field(default=b"", repr=False)
    cursor_ttl_s: int = 3600
    index_prefix: str = DEFAULT_INDEX_PREFIX
    kafka_bootstrap_servers: str = DEFAULT_KAFKA_BOOTSTRAP_SERVERS
    #: librdkafka properties besides `bootstrap.servers` (from `KafkaOptions`: the security
    #: settings, a password among them).
    kafka_config: Mapping[str, str] = field(default_factory=dict, repr=False)
    events_topic: str = DEFAULT_EVENTS_TOPIC
    api_port: int = DEFAULT_API_PORT
    #: gunicorn's bind; None = 127.0.0.1:`api_port`.
    api_bind: str | None = None
    api_workers: int = 2
    api_threads: int = 8
    api_timeout_s: int = 120
    #: Origins that may embed the viewer (CSP frame-ancestors) and hand it a token by
    #: postMessage. Empty: no embedding, no postMessage tokens.
    viewer_embed_origins: tuple[str, ...] = ()
    #: The Ed25519 public keys (PEM) the worker's digests are checked with (the current one
    #: first; older ones after a rotation). Empty: the integrity endpoints answer 503.
    signing_public_keys: tuple[str, ...] = ()
    #: Where gunicorn's workers keep their metrics (`PROMETHEUS_MULTIPROC_DIR`); None: this
    #: process's metrics alone.
    metrics_dir: str | None = None

    def __post_init__(self) -> None:
        if not self.cursor_secret:
            if not self.jwt_secret:
                # Never derived from a public key: anyone could forge cursors with it.
                raise ConfigError(
                    "AUDIT_CURSOR_SECRET is needed when no AUDIT_JWT_SECRET is configured "
                    f"(at least {MIN_CURSOR_SECRET_BYTES} bytes)"
                )
            # Derived rather than random so every gunicorn worker (and every replica)
            # accepts the cursors the others issued. Development only (production
            # requires its own AUDIT_CURSOR_SECRET).
            derived = hashlib.sha256(b"audit-cursor-v1:" + self.jwt_secret.encode()).digest()
            object.__setattr__(self, "cursor_secret", derived)

    @property
    def bind(self) -> str:
        return self.api_bind or f"127.0.0.1:{self.api_port}"

    @property
    def uses_dev_secret(self) -> bool:
        return self.jwt_secret == DEV_JWT_SECRET

    @property
    def jwt_algorithms(self) -> tuple[str, ...]:
        algorithms: list[str] = []
        if self.jwt_secret:
            algorithms.append("HS256")
        if self.jwt_public_key:
            algorithms.append("RS256")
        return tuple(algorithms)

    def elasticsearch_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `elasticsearch.Elasticsearch(...)` (the API's name for
        `elasticsearch_client_options`)."""
        return self.elasticsearch_client_options()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The API's settings; `ConfigError` (one line naming the variable) when one is bad."""
        env = Env(environ)
        environment = env.choice("AUDIT_ENV", ENVIRONMENTS, "development")
        port = env.integer("AUDIT_API_PORT", DEFAULT_API_PORT, 0, MAX_PORT)
        bind = env.optional("AUDIT_API_BIND")
        secret, public_key = _keys(env, environment, bind or f"127.0.0.1:{port}")
        cursor_secret = env.optional("AUDIT_CURSOR_SECRET")
        audience, issuer = env.optional("AUDIT_JWT_AUDIENCE"), env.optional("AUDIT_JWT_ISSUER")
        if environment == "production":
            _require_production(secret, cursor_secret, audience, issuer)
        if cursor_secret and len(cursor_secret.encode()) < MIN_CURSOR_SECRET_BYTES:
            raise ConfigError(
                f"AUDIT_CURSOR_SECRET must be at least {MIN_CURSOR_SECRET_BYTES} bytes"
            )
        kafka = KafkaOptions.from_env(env)

        return cls(
            env=environment,
            jwt_secret=secret,
            jwt_public_key=public_key,
            jwt_audience=audience,
            jwt_issuer=issuer,
            jwt_leeway_s=env.integer(
                "AUDIT_JWT_LEEWAY_SECONDS", cls.jwt_leeway_s, minimum=0, maximum=300
            ),
            jwt_max_lifetime_s=env.integer(
                "AUDIT_JWT_MAX_LIFETIME_SECONDS", cls.jwt_max_lifetime_s, minimum=60
            ),
            cursor_secret=cursor_secret.encode() if cursor_secret else b"",
            cursor_ttl_s=env.integer("AUDIT_CURSOR_TTL_SECONDS", cls.cursor_ttl_s, minimum=10),
            **elasticsearch_fields(env),
            index_prefix=env.text("AUDIT_INDEX_PREFIX", DEFAULT_INDEX_PREFIX),
            kafka_bootstrap_servers=kafka.bootstrap_servers,
            kafka_config=kafka.security_config(),
            events_topic=env.text("AUDIT_EVENTS_TOPIC", DEFAULT_EVENTS_TOPIC),
            api_port=port,
            api_bind=bind,
            api_workers=env.integer("AUDIT_API_WORKERS", cls.api_workers, minimum=1, maximum=64),
            api_threads=env.integer("AUDIT_API_THREADS", cls.api_threads, minimum=1, maximum=256),
            api_timeout_s=env.integer("AUDIT_API_TIMEOUT", cls.api_timeout_s, minimum=1),
            viewer_embed_origins=_origins(env.optional("AUDIT_VIEWER_EMBED_ORIGINS")),
            signing_public_keys=_signing_public_keys(env.optional("AUDIT_SIGNING_PUBLIC_KEY")),
            metrics_dir=env.optional(METRICS_DIR_ENV),
        )


def _keys(env: Env, environment: str, bind: str) -> tuple[str | None, str | None]:
    """The HS256 secret and RS256 public key; the development secret only on loopback."""
    secret = env.optional("AUDIT_JWT_SECRET")
    public_key = _read_key(env.optional("AUDIT_JWT_PUBLIC_KEY"))
    if environment == "production":
        if not secret and not public_key:
            raise ConfigError(
                "AUDIT_ENV=production needs AUDIT_JWT_SECRET (HS256, at least "
                f"{MIN_HS256_SECRET_BYTES} bytes) or AUDIT_JWT_PUBLIC_KEY (RS256 PEM)"
            )
        if secret == DEV_JWT_SECRET:
            raise ConfigError("AUDIT_ENV=production refuses the development JWT secret")
    elif not secret and not public_key:
        secret = DEV_JWT_SECRET
    if secret == DEV_JWT_SECRET and not is_loopback_bind(bind):
        raise ConfigError(
            f"the development JWT secret is only accepted on a loopback bind (AUDIT_API_BIND="
            f"{bind}): set AUDIT_JWT_SECRET or AUDIT_JWT_PUBLIC_KEY"
        )
    if secret and len(secret.encode()) < MIN_HS256_SECRET_BYTES:
        raise ConfigError(
            f"AUDIT_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes for HS256"
        )
    if public_key and "BEGIN PUBLIC KEY" not in public_key:
        raise ConfigError("AUDIT_JWT_PUBLIC_KEY must be a PEM public key (or a path to one)")
    return secret, public_key


def _require_production(
    secret: str | None, cursor_secret: str | None, audience: str | None, issuer: str | None
) -> None:
    """What production may not forget: each missing piece would make tokens or cursors
    forgeable or replayable from another system."""
    missing = [
        name
        for name, value in (
            ("AUDIT_CURSOR_SECRET", cursor_secret),
            ("AUDIT_JWT_AUDIENCE", audience),
            ("AUDIT_JWT_ISSUER", issuer),
        )
        if not value
    ]
    if missing:
        raise ConfigError(f"AUDIT_ENV=production needs {', '.join(missing)}")
    if secret and cursor_secret == secret:
        raise ConfigError("AUDIT_CURSOR_SECRET must differ from AUDIT_JWT_SECRET")


def is_loopback_bind(bind: str) -> bool:
    """Whether a gunicorn bind (`host:port`, `[::1]:port`) listens on loopback only."""
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, a unix socket or 0.0.0.0-like: not provably loopback


def _origins(raw: str | None) -> tuple[str, ...]:
    origins = tuple(dict.fromkeys(o.strip().rstrip("/") for o in (raw or "").split(",")))
    origins = tuple(o for o in origins if o)
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ConfigError(
                f"AUDIT_VIEWER_EMBED_ORIGINS: {origin!r} is not an origin like "
                "https://portal.example.com (scheme, host and optional port; no path, no *)"
            )
    return origins


def _signing_public_keys(value: str | None) -> tuple[str, ...]:
    """PEM blocks from AUDIT_SIGNING_PUBLIC_KEY (the PEM text or a path; several blocks for
    rotated keys), each checked to be an Ed25519 public key."""
    from schemas.integrity import KeyError_, load_public_key

    text = _read_key(value, "AUDIT_SIGNING_PUBLIC_KEY")
    if not text:
        return ()
    marker = "-----BEGIN PUBLIC KEY-----"
    blocks = tuple(marker + block for block in text.split(marker)[1:])
    try:
        for block in blocks:
            load_public_key(block)
    except (KeyError_, ValueError) as error:
        raise ConfigError(f"AUDIT_SIGNING_PUBLIC_KEY: {error}") from None
    if not blocks:
        raise ConfigError("AUDIT_SIGNING_PUBLIC_KEY must be an Ed25519 public key (PEM)")
    return blocks


def _read_key(value: str | None, name: str = "AUDIT_JWT_PUBLIC_KEY") -> str | None:
    """Accept the PEM itself or a path to it (a multi-line PEM is awkward in many env files)."""
    if value is None or "BEGIN" in value:
        return value
    try:
        with open(value, encoding="utf-8") as handle:
            return handle.read()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read {value!r}: {exc.strerror}") from None
