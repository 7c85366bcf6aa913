"""Start-up topic check with a fake admin client: missing topics, creation, the DLQ's limit."""

from __future__ import annotations

from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.settings import Settings
from consumer.topics import BROKER_DEFAULT_MAX_MESSAGE_BYTES, TopicsMissing, check_topics


def done(value: Any = None, error: Exception | None = None) -> Future[Any]:
    future: Future[Any] = Future()
    if error is None:
        future.set_result(value)
    else:
        future.set_exception(error)
    return future


class FakeAdmin:
    def __init__(self, topics: set[str], dlq_limit: str | None = "5242880") -> None:
        self.topics = topics
        self.dlq_limit = dlq_limit
        self.created: list[str] = []

    def list_topics(self, timeout: float) -> Any:
        return SimpleNamespace(topics={name: object() for name in self.topics})

    def create_topics(self, new_topics: list[Any]) -> dict[str, Future[Any]]:
        self.created += [topic.topic for topic in new_topics]
        return {topic.topic: done() for topic in new_topics}

    def describe_configs(self, resources: list[Any]) -> dict[Any, Future[Any]]:
        [resource] = resources
        if self.dlq_limit is None:
            error = KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
            return {resource: done(error=error)}
        return {resource: done({"max.message.bytes": SimpleNamespace(value=self.dlq_limit)})}


SETTINGS = Settings(topics=("in-a", "in-b"), dlq_topic="dead")


def test_present_topics_pass_and_the_dlq_limit_is_read() -> None:
    facts = check_topics(SETTINGS, FakeAdmin({"in-a", "in-b", "dead"}))
    assert facts.dlq_max_message_bytes == 5_242_880


def test_missing_topics_are_named_in_one_error() -> None:
    with pytest.raises(TopicsMissing) as caught:
        check_topics(SETTINGS, FakeAdmin({"in-a"}))
    assert "in-b, dead" in str(caught.value)
    assert "AUDIT_CREATE_TOPICS=true" in str(caught.value)


def test_missing_topics_are_created_when_configured() -> None:
    admin = FakeAdmin({"in-a"})
    check_topics(Settings(topics=("in-a", "in-b"), dlq_topic="dead", create_topics=True), admin)
    assert admin.created == ["in-b", "dead"]


def test_an_unreadable_limit_falls_back_to_the_broker_default() -> None:
    facts = check_topics(SETTINGS, FakeAdmin({"in-a", "in-b", "dead"}, dlq_limit=None))
    assert facts.dlq_max_message_bytes == BROKER_DEFAULT_MAX_MESSAGE_BYTES
