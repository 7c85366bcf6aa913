"""A worker and an API wired to a fresh topic, index prefix and consumer group."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from deploy.local.processes import free_port
from tests.support.tokens import TEST_JWT_SECRET, TEST_SIGNING_KEY, TEST_SIGNING_PUBLIC_KEY


@pytest.fixture
def stack_env(
    kafka_bootstrap: str,
    es_url: str,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
) -> dict[str, str]:
    """Environment for `audit-worker` and `audit-api` (topic in AUDIT_TOPICS, prefix in
    AUDIT_INDEX_PREFIX); the API's download events go to the topic the worker reads."""
    topic = create_topic(unique_name("events"))
    create_topic(f"{topic}.dlq")  # the worker refuses to start without its DLQ topic
    return {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ELASTICSEARCH_URL": es_url,
        "AUDIT_INDEX_PREFIX": unique_name("audit"),
        "AUDIT_TOPICS": topic,
        "AUDIT_EVENTS_TOPIC": topic,
        "AUDIT_DLQ_TOPIC": f"{topic}.dlq",
        "AUDIT_GROUP_ID": unique_name("group"),
        "AUDIT_WORKER_PORT": str(free_port()),
        "AUDIT_API_PORT": str(free_port()),
        "AUDIT_JWT_SECRET": TEST_JWT_SECRET,
        "AUDIT_ENV": "development",
        "AUDIT_SIGNING_KEY": TEST_SIGNING_KEY,
        "AUDIT_SIGNING_PUBLIC_KEY": TEST_SIGNING_PUBLIC_KEY,
    }
