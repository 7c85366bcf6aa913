"""Helpers for the index lifecycle tests: an older template, the `audit-log` CLI in a fresh
process, a reader listing through the API while something else changes the indices."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan
from flask.testing import FlaskClient

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from schemas.index_template import index_template, read_alias, template_name
from schemas.lifecycle_store import lifecycle_index
from tests.support.doubles import RecordingPublisher

SECRET = "lifecycle-test-secret-of-32-bytes-or-more"


def install_legacy_template(es: Elasticsearch, prefix: str) -> None:
    """Template version 2 as the release before it installed it: no index sort, no
    version in the mapping."""
    body = index_template(prefix)
    del body["template"]["settings"]["sort"]
    del body["template"]["mappings"]["_meta"]
    body["version"] = 2
    es.indices.put_index_template(name=template_name(prefix), **body)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`audit-log ARGS` in a fresh process with only `env` (and PATH) in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "schemas.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def cli_process(*args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "schemas.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def api_client(es_url: str, prefix: str) -> FlaskClient:
    settings = Settings(jwt_secret=SECRET, index_prefix=prefix, elasticsearch_url=es_url)
    return create_app(settings, publisher=RecordingPublisher()).test_client()


def owner(partner: str) -> dict[str, str]:
    """Headers of a request by an owner of `partner` (sees all of its logs)."""
    return {"Authorization": f"Bearer {mint_token(SECRET, 'u-1', partner, 'owner', [])}"}


def list_ids(
    client: FlaskClient, partner: str, start: datetime, end: datetime, **params: str
) -> list[str]:
    """Every Log ID an owner of `partner` lists in [start, end], page by page (one entry per
    item listed: a log shown twice appears twice)."""
    headers = owner(partner)
    query: dict[str, Any] = {
        "from": start.isoformat(),
        "to": end.isoformat(),
        "limit": 500,
        **params,
    }
    ids: list[str] = []
    while True:
        response = client.get("/api/v1/audit-logs", query_string=query, headers=headers)
        assert response.status_code == 200, response.json
        ids += [item["id"] for item in response.json["items"]]
        if not response.json["next_cursor"]:
            return ids
        query["cursor"] = response.json["next_cursor"]


def alias_sources(es: Elasticsearch, prefix: str) -> list[tuple[str, dict[str, Any]]]:
    """(`_id`, `_source`) of every log behind the read alias, one entry per stored copy."""
    es.indices.refresh(index=read_alias(prefix))
    return [
        (hit["_id"], hit["_source"])
        for hit in scan(es, index=read_alias(prefix), query={"query": {"match_all": {}}})
    ]


def alias_event_ids(es: Elasticsearch, prefix: str) -> list[str]:
    return [source["event"]["id"] for _id, source in alias_sources(es, prefix)]


def lifecycle_record(es: Elasticsearch, prefix: str, record_id: str) -> dict[str, Any] | None:
    # 503: the index is being created by the process under test (its shard not started yet).
    reply = es.options(ignore_status=(404, 503)).get(index=lifecycle_index(prefix), id=record_id)
    return dict(reply["_source"]) if reply.get("found") else None


def read_topic(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every value on the (single-partition) topic, decoded, from the start to its end."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    )
    try:
        end = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        values: list[dict[str, Any]] = []
        deadline = time.monotonic() + 30
        while len(values) < end and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                values.append(json.loads(message.value()))
        return values
    finally:
        consumer.close()


class Reader:
    """Lists again and again in a thread; keeps every listing with when it ran."""

    def __init__(self, listing: Callable[[], list[str]]) -> None:
        self._listing = listing
        self._stop = threading.Event()
        self.listings: list[tuple[float, float, list[str]]] = []
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lifecycle-reader", daemon=True)

    def __enter__(self) -> Reader:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                ids = self._listing()
                self.listings.append((started, time.monotonic(), ids))
        except BaseException as error:  # raised by the test, in its own thread
            self.error = error

    def during(self, start: float, end: float) -> list[list[str]]:
        """The listings that ran wholly between `start` and `end` (monotonic clock)."""
        return [ids for began, ended, ids in self.listings if began >= start and ended <= end]
