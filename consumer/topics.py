"""Start-up check of the topics the worker needs: they exist, and how large a dead letter may be.

A worker subscribed to a missing input topic would idle until its next metadata refresh, and
one whose dead-letter topic is missing would stall 30 s per letter, for ever (or have the
broker auto-create it with whatever defaults it has). So both are checked before consuming:
missing topics stop the worker with one readable line, unless `AUDIT_CREATE_TOPICS=true`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, ConfigResource, NewTopic, ResourceType

from consumer.settings import Settings

log = logging.getLogger(__name__)

#: The broker's default `max.message.bytes` (Kafka 3.x), used if the topic's cannot be read.
BROKER_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588
TIMEOUT_S = 15.0


class TopicsMissing(Exception):
    """Topics the worker needs do not exist (and it was not asked to create them)."""


@dataclass(frozen=True)
class TopicFacts:
    dlq_max_message_bytes: int


def check_topics(settings: Settings, admin: Any | None = None) -> TopicFacts:
    """Make sure the input and dead-letter topics exist; read the DLQ topic's size limit."""
    config = settings.kafka_client_config()
    config["logger"] = log
    client = admin or AdminClient(config)
    wanted = [*settings.topics, settings.dlq_topic]
    existing = set(client.list_topics(timeout=TIMEOUT_S).topics)
    missing = [name for name in wanted if name not in existing]
    if missing and not settings.create_topics:
        raise TopicsMissing(
            f"topic(s) {', '.join(missing)} do not exist on {settings.kafka_bootstrap_servers}: "
            "create them (see README, 'Topics') or set AUDIT_CREATE_TOPICS=true"
        )
    if missing:
        _create(client, missing)
    return TopicFacts(dlq_max_message_bytes=_max_message_bytes(client, settings.dlq_topic))


def _create(client: Any, names: list[str]) -> None:
    # -1: the broker's own num.partitions and default.replication.factor (KIP-464).
    futures = client.create_topics(
        [NewTopic(name, num_partitions=-1, replication_factor=-1) for name in names]
    )
    for name, future in futures.items():
        try:
            future.result(timeout=TIMEOUT_S)
        except KafkaException as error:
            if error.args and error.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # another worker was quicker
            raise
        log.info("created topic %s (AUDIT_CREATE_TOPICS=true)", name)


def _max_message_bytes(client: Any, topic: str) -> int:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    try:
        configs = client.describe_configs([resource])[resource].result(timeout=TIMEOUT_S)
        return int(configs["max.message.bytes"].value)
    except (KafkaException, KeyError, ValueError, TypeError) as error:
        # A broker that will not say (ACLs, say): its default, and the value-less fallback
        # for anything larger still applies.
        log.warning("cannot read max.message.bytes of %s (%s); assuming the default", topic, error)
        return BROKER_DEFAULT_MAX_MESSAGE_BYTES
