"""Worker configuration, read from the environment once per process (see docs/architecture.md).

Kafka and Elasticsearch options, the defaults and the error type are `schemas.config`'s, the
same as the API's and the `audit-log` tools'; what is here is the worker's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.config import (
    DEFAULT_DLQ_TOPIC,
    DEFAULT_EVENTS_TOPIC,
    DEFAULT_INDEX_PREFIX,
    LOG_LEVELS,
    MAX_PORT,
    ConfigError,
    ElasticsearchFields,
    Env,
    KafkaFields,
    elasticsearch_fields,
    kafka_fields,
)
from schemas.integrity import KeyError_, load_private_key

#: The worker's name for `schemas.config.ConfigError` (one error type for every process).
SettingsError = ConfigError


@dataclass(frozen=True)
class Settings(KafkaFields, ElasticsearchFields):
    index_prefix: str = DEFAULT_INDEX_PREFIX
    topics: tuple[str, ...] = (DEFAULT_EVENTS_TOPIC,)
    dlq_topic: str = DEFAULT_DLQ_TOPIC
    group_id: str = "audit-worker"
    #: 1,000, not 500: fewer, larger bulk requests cost Elasticsearch less per event (B1,
    #: 100,000 events, 2 cores: 3,911 / 3,951 -> 4,129 / 4,346 events/s; 2,000: 4,303).
    batch_size: int = 1000
    # Short: at low rates the window is pure latency (B2); at high rates batches fill first.
    batch_window_seconds: float = 0.2
    #: A batch also closes at this many bytes of record values: 1,000 large events must not
    #: be normalized (and held) at once. One record larger than this is a batch of its own.
    batch_max_bytes: int = 8 * 1024 * 1024
    #: Records fetched and held ahead of the next batch (`consumer.batching.RecordFeed`).
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

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """The worker's settings; `ConfigError` (one line naming the variable) when one is bad."""
        env = Env(environ)
        settings = cls(
            **kafka_fields(env),
            **elasticsearch_fields(env),
            index_prefix=env.text("AUDIT_INDEX_PREFIX", cls.index_prefix),
            topics=env.names("AUDIT_TOPICS", cls.topics),
            dlq_topic=env.text("AUDIT_DLQ_TOPIC", cls.dlq_topic),
            group_id=env.text("AUDIT_GROUP_ID", cls.group_id),
            batch_size=env.integer("AUDIT_BATCH_SIZE", cls.batch_size, minimum=1),
            batch_window_seconds=env.number(
                "AUDIT_BATCH_WINDOW_SECONDS", cls.batch_window_seconds, minimum=0.001
            ),
            batch_max_bytes=env.integer("AUDIT_BATCH_MAX_BYTES", cls.batch_max_bytes, minimum=1024),
            prefetch_records=env.integer("AUDIT_PREFETCH_RECORDS", cls.prefetch_records, minimum=1),
            worker_port=env.integer("AUDIT_WORKER_PORT", cls.worker_port, 0, MAX_PORT),
            worker_processes=env.integer("AUDIT_WORKER_PROCESSES", cls.worker_processes, minimum=1),
            worker_bind=env.text("AUDIT_WORKER_BIND", cls.worker_bind),
            state_dir=env.optional("AUDIT_WORKER_STATE_DIR"),
            create_topics=env.flag("AUDIT_CREATE_TOPICS"),
            log_level=env.choice("AUDIT_LOG_LEVEL", LOG_LEVELS, cls.log_level),
            signing_key=_signing_key(env.optional("AUDIT_SIGNING_KEY")),
            digest_interval_s=env.number(
                "AUDIT_DIGEST_INTERVAL_SECONDS", cls.digest_interval_s, minimum=0.1
            ),
            digest_max_leaves=env.integer(
                "AUDIT_DIGEST_MAX_LEAVES", cls.digest_max_leaves, minimum=1
            ),
        )
        if settings.dlq_topic in settings.topics:
            raise ConfigError("AUDIT_DLQ_TOPIC must not be one of AUDIT_TOPICS (it would loop)")
        return settings


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """`Settings.from_env`, by the name `audit-worker` and its tests call it."""
    return Settings.from_env(environ)


def require_signing_key(settings: Settings) -> None:
    """A worker that cannot sign its digests must not start (`audit-worker` calls this)."""
    if settings.signing_key is None:
        raise ConfigError(
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
        raise ConfigError(f"AUDIT_SIGNING_KEY: {error}") from None
    return value
