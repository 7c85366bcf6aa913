"""Kafka and Elasticsearch as the benchmarks use them: the endpoints the worker and the API
read (``KAFKA_BOOTSTRAP_SERVERS``, ``ELASTICSEARCH_URL``, by the same rules and defaults), the
names a run creates, and creating and dropping its topics and indices."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterable, Sequence

from confluent_kafka.admin import AdminClient, NewTopic
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from bench.output import log
from schemas.config import ElasticsearchOptions, Env, KafkaOptions
from schemas.index_template import digest_index
from schemas.lifecycle_store import lifecycle_index

ENV = Env()  # the variables the worker and the API read, by the same rules and defaults
KAFKA = KafkaOptions.from_env(ENV).bootstrap_servers
ES_URL = ElasticsearchOptions.from_env(ENV).url
# Every name this suite creates starts with this, so `python -m bench.clean` finds leftovers.
NAME_PREFIX = "bench-"


def unique(kind: str) -> str:
    """A lower-case name unique to this run, e.g. ``bench-b1-worker-1a2b3c4d``."""
    return f"{NAME_PREFIX}{kind}-{uuid.uuid4().hex[:8]}"


def es_client(timeout: float = 300) -> Elasticsearch:
    return Elasticsearch(ES_URL, request_timeout=timeout, connections_per_node=32)


def es_count(es: Elasticsearch, index: str, refresh: bool = True, patience: float = 180) -> int:
    """``_count`` (after a refresh); rides out an Elasticsearch restart of up to ``patience`` s
    (the local node is shared with other test runs, which may restart it)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if refresh:
                es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
            reply = es.count(index=index, ignore_unavailable=True, allow_no_indices=True)
            return int(reply["count"])
        except (TransportError, ApiError) as error:
            if isinstance(error, ApiError) and error.status_code < 500:
                raise
            if time.monotonic() > deadline:
                raise
            log(f"Elasticsearch unavailable ({type(error).__name__}); waiting")
            time.sleep(2)


def drop_indices(es: Elasticsearch, prefix: str) -> None:
    """Delete ``{prefix}-*``, the worker's digests and the template named ``prefix`` (all
    owned by the benchmark)."""
    assert prefix.startswith(NAME_PREFIX), prefix
    with contextlib.suppress(Exception):
        es.indices.delete(
            index=f"{prefix}-*,{digest_index(prefix)},{lifecycle_index(prefix)}",
            allow_no_indices=True,
            expand_wildcards="all",
            ignore_unavailable=True,
        )
    with contextlib.suppress(Exception):
        es.indices.delete_index_template(name=prefix)


def kafka_admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": KAFKA})


def create_topics(names: Sequence[str], partitions: int = 4) -> None:
    admin = kafka_admin()
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    )
    for future in futures.values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the metadata shows every partition
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and len(topics[n].partitions) == partitions for n in names):
            return
        time.sleep(0.2)


def delete_topics(names: Iterable[str]) -> None:
    names = [n for n in names if n.startswith(NAME_PREFIX)]
    if not names:
        return
    admin = kafka_admin()  # keep a reference until the futures resolve
    futures = admin.delete_topics(names, operation_timeout=30)
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)
