"""Shared fixtures: where the real Kafka and Elasticsearch are, and unique names per test.

Services are found in this order, once per session:
1. endpoints from the environment (`KAFKA_BOOTSTRAP_SERVERS` and `ELASTICSEARCH_URL`);
2. the project's own local services (`deploy.local.services`), started or reused;
3. testcontainers (Kafka and Elasticsearch containers) where a Docker engine answers.
Tests are isolated by unique topic and index names, never by restarting services.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local import services

TESTS_DIR = Path(__file__).resolve().parent
LAYERS = ("unit", "integration", "e2e")
ES_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch:8.19.21"
KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test carries the marker of its folder, so `-m unit` etc. select by layer."""
    for item in items:
        relative = Path(str(item.path)).resolve().relative_to(TESTS_DIR)
        if relative.parts and relative.parts[0] in LAYERS:
            item.add_marker(getattr(pytest.mark, relative.parts[0]))


@dataclass(frozen=True)
class Endpoints:
    kafka_bootstrap: str
    es_url: str
    origin: str  # "environment", "local" or "testcontainers"


def _docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        import docker  # testcontainers depends on it

        docker.from_env(timeout=3).ping()
    except Exception:
        return False
    return True


def _local_endpoints() -> Endpoints | None:
    if os.environ.get("AUDIT_TEST_SERVICES") == "testcontainers":
        return None
    try:
        services.up()
    except services.ServiceError as error:
        if _docker_answers():
            return None
        pytest.exit(f"local services could not start: {error}", returncode=3)
    return Endpoints(services.Kafka().endpoint, services.Elasticsearch().endpoint, "local")


@pytest.fixture(scope="session")
def endpoints() -> Iterator[Endpoints]:
    kafka = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    es_url = os.environ.get("ELASTICSEARCH_URL")
    if kafka and es_url:
        yield Endpoints(kafka, es_url, "environment")
        return
    local = _local_endpoints()
    if local is not None:
        yield local
        return
    yield from _container_endpoints()


def _container_endpoints() -> Iterator[Endpoints]:
    from testcontainers.community.elasticsearch import ElasticSearchContainer
    from testcontainers.community.kafka import KafkaContainer

    kafka = KafkaContainer(KAFKA_IMAGE).with_kraft()
    es = ElasticSearchContainer(ES_IMAGE, mem_limit="1g").with_env("ES_JAVA_OPTS", "-Xmx512m")
    with kafka, es:
        es_url = f"http://{es.get_container_host_ip()}:{es.get_exposed_port(es.port)}"
        yield Endpoints(kafka.get_bootstrap_server(), es_url, "testcontainers")


@pytest.fixture(scope="session")
def kafka_bootstrap(endpoints: Endpoints) -> str:
    return endpoints.kafka_bootstrap


@pytest.fixture(scope="session")
def es_url(endpoints: Endpoints) -> str:
    return endpoints.es_url


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Any]:
    from elasticsearch import Elasticsearch

    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture(scope="session")
def kafka_admin(kafka_bootstrap: str) -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": kafka_bootstrap})


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """`unique_name("events")` -> "t-events-3f0c9a52e1"; indices and topics named from it are
    deleted after the test (only when the test used Elasticsearch or Kafka)."""
    names: list[str] = []

    def make(prefix: str) -> str:
        name = f"t-{prefix}-{uuid.uuid4().hex[:10]}".lower()
        names.append(name)
        return name

    yield make
    if "es" in request.fixturenames and names:
        _delete_indices(request.getfixturevalue("es"), names)


def _delete_indices(es: Any, names: list[str]) -> None:
    for name in names:
        es.options(ignore_status=404).indices.delete(index=f"{name}*")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{name}*")


@pytest.fixture
def create_topic(kafka_admin: Any) -> Iterator[Callable[..., str]]:
    """Create a topic and wait until the broker confirms it; deleted after the test."""
    from confluent_kafka.admin import NewTopic

    created: list[str] = []

    def create(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        futures = kafka_admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})]
        )
        futures[name].result(timeout=30)
        created.append(name)
        return name

    yield create
    if created:
        for future in kafka_admin.delete_topics(created).values():
            # Deleting is best effort: a leftover uniquely named topic harms nothing.
            with contextlib.suppress(Exception):
                future.result(timeout=30)


@pytest.fixture(scope="session")
def rsa_keys() -> tuple[bytes, str]:
    """An RSA key pair for RS256 tokens: (private PEM bytes, public PEM text)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public.decode()
