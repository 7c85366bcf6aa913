"""API settings, read from the environment once per process.

Nothing else in `api/` reads `os.environ`: the app factory takes a `Settings` so tests can
build one explicitly, and production fails fast here with one readable message instead of
failing on the first request.

Secure by default: what production needs (a real key, its own cursor secret, the expected
audience and issuer) refuses to start when forgotten; the development secret, which is in
this repository, is refused whenever the API listens beyond loopback.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# Only for development; refused in production and on any bind that is not loopback.
DEV_JWT_SECRET = "dev-only-audit-jwt-secret-do-not-use-in-production"  # noqa: S105

# RFC 7518 §3.2: an HS256 key must be at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32
MIN_CURSOR_SECRET_BYTES = 32

ENVIRONMENTS = ("development", "production")
DEFAULT_API_PORT = 8080
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


class ConfigError(RuntimeError):
    """The environment does not describe a runnable API; the message says what to set."""


@dataclass(frozen=True)
class Settings:
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
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_ca_certs: str | None = None
    index_prefix: str = "audit-logs"
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_config: Mapping[str, str] = field(default_factory=dict, repr=False)
    events_topic: str = "audit.events"
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
        port = _integer(get, "AUDIT_API_PORT", DEFAULT_API_PORT, minimum=0, maximum=65535)
        bind = get("AUDIT_API_BIND")
        secret, public_key = _keys(get, env, bind or f"127.0.0.1:{port}")
        cursor_secret = get("AUDIT_CURSOR_SECRET")
        audience, issuer = get("AUDIT_JWT_AUDIENCE"), get("AUDIT_JWT_ISSUER")
        if env == "production":
            _require_production(secret, cursor_secret, audience, issuer)
        if cursor_secret and len(cursor_secret.encode()) < MIN_CURSOR_SECRET_BYTES:
            raise ConfigError(
                f"AUDIT_CURSOR_SECRET must be at least {MIN_CURSOR_SECRET_BYTES} bytes"
            )

        return cls(
            env=env,
            jwt_secret=secret,
            jwt_public_key=public_key,
            jwt_audience=audience,
            jwt_issuer=issuer,
            jwt_leeway_s=_integer(get, "AUDIT_JWT_LEEWAY_SECONDS", 30, minimum=0, maximum=300),
            jwt_max_lifetime_s=_integer(
                get, "AUDIT_JWT_MAX_LIFETIME_SECONDS", 24 * 3600, minimum=60
            ),
            cursor_secret=cursor_secret.encode() if cursor_secret else b"",
            cursor_ttl_s=_integer(get, "AUDIT_CURSOR_TTL_SECONDS", 3600, minimum=10),
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
            api_bind=bind,
            api_workers=_integer(get, "AUDIT_API_WORKERS", 2, minimum=1, maximum=64),
            api_threads=_integer(get, "AUDIT_API_THREADS", 8, minimum=1, maximum=256),
            api_timeout_s=_integer(get, "AUDIT_API_TIMEOUT", 120, minimum=1),
            viewer_embed_origins=_origins(get("AUDIT_VIEWER_EMBED_ORIGINS")),
            signing_public_keys=_signing_public_keys(get("AUDIT_SIGNING_PUBLIC_KEY")),
        )


Getter = Callable[[str], "str | None"]


def _keys(get: Getter, env: str, bind: str) -> tuple[str | None, str | None]:
    """The HS256 secret and RS256 public key; the development secret only on loopback."""
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


def _integer(get: Getter, name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f"between {minimum} and {maximum}" if maximum is not None else f">= {minimum}"
        raise ConfigError(f"{name} must be {bounds}, got {value}")
    return value


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


def _kafka_config(get: Getter) -> dict[str, str]:
    names = {
        "KAFKA_SECURITY_PROTOCOL": "security.protocol",
        "KAFKA_SASL_MECHANISM": "sasl.mechanism",
        "KAFKA_SASL_USERNAME": "sasl.username",
        "KAFKA_SASL_PASSWORD": "sasl.password",
        "KAFKA_SSL_CA_LOCATION": "ssl.ca.location",
    }
    return {key: value for env_name, key in names.items() if (value := get(env_name))}
