"""The `audit-log` tools' settings, read from the environment once, in `main()`.

Kafka and Elasticsearch options are `schemas.config`'s, so a command run beside the worker
(the retention CronJob runs in the worker's image, with its environment) reads each
variable as the worker does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from schemas.config import (
    DEFAULT_DLQ_TOPIC,
    DEFAULT_EVENTS_TOPIC,
    DEFAULT_INDEX_PREFIX,
    ElasticsearchOptions,
    Env,
    KafkaOptions,
)
from schemas.lifecycle import DEFAULT_RETENTION_DAYS, RETENTION_DAYS_ENV, parse_retention_days


@dataclass(frozen=True)
class CliSettings:
    kafka: KafkaOptions = field(default_factory=KafkaOptions)
    elasticsearch: ElasticsearchOptions = field(default_factory=ElasticsearchOptions)
    index_prefix: str = DEFAULT_INDEX_PREFIX
    #: Where `indices retention` records what it deleted (the API's download events go there too).
    events_topic: str = DEFAULT_EVENTS_TOPIC
    dlq_topic: str = DEFAULT_DLQ_TOPIC
    retention_days: int = DEFAULT_RETENTION_DAYS
    #: `verify`'s trusted key(s) when no --public-key is given: PEM text or a path.
    signing_public_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliSettings:
        """Every variable checked, whichever command runs: `ConfigError`, one line naming it."""
        env = Env(environ)
        return cls(
            kafka=KafkaOptions.from_env(env),
            elasticsearch=ElasticsearchOptions.from_env(env),
            index_prefix=env.text("AUDIT_INDEX_PREFIX", DEFAULT_INDEX_PREFIX),
            events_topic=env.text("AUDIT_EVENTS_TOPIC", DEFAULT_EVENTS_TOPIC),
            dlq_topic=env.text("AUDIT_DLQ_TOPIC", DEFAULT_DLQ_TOPIC),
            retention_days=parse_retention_days(env.optional(RETENTION_DAYS_ENV)),
            signing_public_key=env.optional("AUDIT_SIGNING_PUBLIC_KEY"),
        )
