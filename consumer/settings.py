"""Worker configuration, read from the environment once per process (see docs/architecture.md)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.integrity import KeyError_, load_private_key

_SECURITY_PROTOCOLS = {"PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"}
_SASL_MECHANISMS = {"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}


class SettingsError(ValueError):
    """A configuration mistake, worded for the operator who made it."""


@dataclass(frozen=True)
class Settings:
    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_security_protocol: str | None = None
    kafka_sasl_mechanism: str | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: str | None = field(default=None, repr=False)
    kafka_ssl_ca_location: str | None = None
    elasticsearch_url: str = "http://127.0.0.1:9200"
    elasticsearch_api_key: str | None = field(default=None, repr=False)
    elasticsearch_username: str | None = None
    elasticsearch_password: str | None = field(default=None, repr=False)
    elasticsearch_ca_certs: str | None = None
    index_prefix: str = "audit-logs"
    topics: tuple[str, ...] = ("audit.events",)
    dlq_topic: str = "audit.events.dlq"
    group_id: str = "audit-worker"
    batch_size: int = 500
    # Short: at low rates the window is pure latency (B2); at high rates batches fill first.
    batch_window_seconds: float = 0.2
    #: A batch also closes at this many bytes of record values: 500 large events must not
    #: be normalized (and held) at once. One record larger than this is a batch of its own.
    batch_max_bytes: int = 8 * 1024 * 1024
    #: Records Faust may hold ahead of the batch in hand (its `stream_buffer_maxsize`).
    prefetch_records: int = 100
    worker_port: int = 9108
    #: Worker processes in the one consumer group (see consumer/processes.py).
    worker_processes: int = 1
    #: Loopback unless told otherwise: containers set 0.0.0.0 so probes and scrapers reach it.
    worker_bind: str = "127.0.0.1"
    #: Faust's data folder (we keep no tables in it); None = a fresh private temp folder.
    state_dir: str | None = None
    #: Create missing input/DLQ topics at start-up (broker defaults) instead of refusing.
    create_topics: bool = False
    log_level: str = "INFO"
    #: Ed25519 private key (PEM, or a path to one) that signs the integrity digests.
    signing_key: str | None = field(default=None, repr=False)
    #: Digests are stored (and only then offsets committed) at most this often...
    digest_interval_s: float = 10.0
    #: ...or as soon as this many logs wait to be covered.
    digest_max_leaves: int = 10_000

    @property
    def bootstrap_list(self) -> list[str]:
        return [host.strip() for host in self.kafka_bootstrap_servers.split(",") if host.strip()]

    def kafka_client_config(self) -> dict[str, Any]:
        """librdkafka (confluent-kafka) settings for the DLQ producer and admin probes."""
        config: dict[str, Any] = {"bootstrap.servers": self.kafka_bootstrap_servers}
        optional = {
            "security.protocol": self.kafka_security_protocol,
            "sasl.mechanism": self.kafka_sasl_mechanism,
            "sasl.username": self.kafka_sasl_username,
            "sasl.password": self.kafka_sasl_password,
            "ssl.ca.location": self.kafka_ssl_ca_location,
        }
        config.update({key: value for key, value in optional.items() if value})
        return config

    def elasticsearch_client_options(self) -> dict[str, Any]:
        """Keyword arguments for `Elasticsearch(...)` / `AsyncElasticsearch(...)`."""
        options: dict[str, Any] = {"hosts": [self.elasticsearch_url]}
        if self.elasticsearch_api_key:
            options["api_key"] = self.elasticsearch_api_key
        elif self.elasticsearch_username:
            options["basic_auth"] = (self.elasticsearch_username, self.elasticsearch_password or "")
        if self.elasticsearch_ca_certs:
            options["ca_certs"] = self.elasticsearch_ca_certs
        return options


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment; raise `SettingsError` naming the bad variable."""
    env = os.environ if environ is None else environ

    def text(name: str, default: str) -> str:
        value = env.get(name, "").strip()
        return value or default

    def optional(name: str) -> str | None:
        value = env.get(name, "").strip()
        return value or None

    settings = Settings(
        kafka_bootstrap_servers=text("KAFKA_BOOTSTRAP_SERVERS", Settings.kafka_bootstrap_servers),
        kafka_security_protocol=_upper(optional("KAFKA_SECURITY_PROTOCOL")),
        kafka_sasl_mechanism=_upper(optional("KAFKA_SASL_MECHANISM")),
        kafka_sasl_username=optional("KAFKA_SASL_USERNAME"),
        kafka_sasl_password=optional("KAFKA_SASL_PASSWORD"),
        kafka_ssl_ca_location=optional("KAFKA_SSL_CA_LOCATION"),
        elasticsearch_url=text("ELASTICSEARCH_URL", Settings.elasticsearch_url).rstrip("/"),
        elasticsearch_api_key=optional("ELASTICSEARCH_API_KEY"),
        elasticsearch_username=optional("ELASTICSEARCH_USERNAME"),
        elasticsearch_password=optional("ELASTICSEARCH_PASSWORD"),
        elasticsearch_ca_certs=optional("ELASTICSEARCH_CA_CERTS"),
        index_prefix=text("AUDIT_INDEX_PREFIX", Settings.index_prefix),
        topics=_topics(text("AUDIT_TOPICS", ",".join(Settings.topics))),
        dlq_topic=text("AUDIT_DLQ_TOPIC", Settings.dlq_topic),
        group_id=text("AUDIT_GROUP_ID", Settings.group_id),
        batch_size=_number(env, "AUDIT_BATCH_SIZE", int, Settings.batch_size, minimum=1),
        batch_window_seconds=_number(
            env, "AUDIT_BATCH_WINDOW_SECONDS", float, Settings.batch_window_seconds, minimum=0.001
        ),
        batch_max_bytes=_number(
            env, "AUDIT_BATCH_MAX_BYTES", int, Settings.batch_max_bytes, minimum=1024
        ),
        prefetch_records=_number(
            env, "AUDIT_PREFETCH_RECORDS", int, Settings.prefetch_records, minimum=1
        ),
        worker_port=_number(env, "AUDIT_WORKER_PORT", int, Settings.worker_port, minimum=0),
        worker_processes=_number(
            env, "AUDIT_WORKER_PROCESSES", int, Settings.worker_processes, minimum=1
        ),
        worker_bind=text("AUDIT_WORKER_BIND", Settings.worker_bind),
        state_dir=optional("AUDIT_WORKER_STATE_DIR"),
        create_topics=_flag(env, "AUDIT_CREATE_TOPICS"),
        log_level=text("AUDIT_LOG_LEVEL", Settings.log_level).upper(),
        signing_key=_signing_key(optional("AUDIT_SIGNING_KEY")),
        digest_interval_s=_number(
            env, "AUDIT_DIGEST_INTERVAL_SECONDS", float, Settings.digest_interval_s, minimum=0.1
        ),
        digest_max_leaves=_number(
            env, "AUDIT_DIGEST_MAX_LEAVES", int, Settings.digest_max_leaves, minimum=1
        ),
    )
    _check(settings)
    return settings


def require_signing_key(settings: Settings) -> None:
    """A worker that cannot sign its digests must not start (`audit-worker` calls this)."""
    if settings.signing_key is None:
        raise SettingsError(
            "AUDIT_SIGNING_KEY is not set: the worker signs integrity digests with an Ed25519 "
            "private key (PEM or a path; `make run` generates a development key)"
        )


def _signing_key(value: str | None) -> str | None:
    """The digest signing key, checked now: a key that cannot sign is a start-up error."""
    if value is None:
        return None
    try:
        load_private_key(value)
    except (KeyError_, ValueError, TypeError) as error:
        raise SettingsError(f"AUDIT_SIGNING_KEY: {error}") from None
    return value


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise SettingsError(f"{name}={raw!r}; use true or false")


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


def _topics(raw: str) -> tuple[str, ...]:
    topics = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not topics:
        raise SettingsError("AUDIT_TOPICS must name at least one topic")
    return topics


def _number(
    env: Mapping[str, str], name: str, kind: type[int] | type[float], default: float, minimum: float
) -> Any:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not a {kind.__name__}") from None
    if value < minimum:
        raise SettingsError(f"{name}={raw!r} must be at least {minimum}")
    return value


def _check(settings: Settings) -> None:
    protocol = settings.kafka_security_protocol
    if protocol and protocol not in _SECURITY_PROTOCOLS:
        raise SettingsError(
            f"KAFKA_SECURITY_PROTOCOL={protocol!r}; choose one of {sorted(_SECURITY_PROTOCOLS)}"
        )
    if protocol and protocol.startswith("SASL"):
        mechanism = settings.kafka_sasl_mechanism or "PLAIN"
        if mechanism not in _SASL_MECHANISMS:
            raise SettingsError(
                f"KAFKA_SASL_MECHANISM={mechanism!r}; choose one of {sorted(_SASL_MECHANISMS)}"
            )
        if not settings.kafka_sasl_username or settings.kafka_sasl_password is None:
            raise SettingsError(
                f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME and "
                "KAFKA_SASL_PASSWORD"
            )
    if settings.elasticsearch_username and settings.elasticsearch_password is None:
        raise SettingsError("ELASTICSEARCH_USERNAME is set but ELASTICSEARCH_PASSWORD is not")
    if not settings.bootstrap_list:
        raise SettingsError("KAFKA_BOOTSTRAP_SERVERS is empty")
    if not settings.elasticsearch_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"ELASTICSEARCH_URL={settings.elasticsearch_url!r} must start with http:// or https://"
        )
    if settings.dlq_topic in settings.topics:
        raise SettingsError("AUDIT_DLQ_TOPIC must not be one of AUDIT_TOPICS (it would loop)")
