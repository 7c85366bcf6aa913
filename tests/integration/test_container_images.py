"""The worker and API images, built and run for real against the local Kafka and Elasticsearch.

Both images are built once per session (`make images`' code, the engine's layer cache makes a
second build quick), then run as containers on the host network with unique topics, index
prefix and consumer group. The API runs as the image ships it, in production mode: its own
JWT secret, cursor secret, audience and issuer, and tokens carrying that `aud` and `iss`. That
is the configuration deploy/k8s runs; development mode would skip the very checks an operator
meets first. Skipped with the reason where no container engine can run (see containers.py).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from api.devtoken import mint_token
from deploy.local.processes import free_port, tree_rss_mib
from schemas.publisher import AuditPublisher
from tests.integration.containers import (
    IMAGE_UID,
    Container,
    WorkerContainer,
    cannot_run,
    load_images_module,
)
from tests.integration.worker_harness import (
    CuttableProxy,
    Setup,
    WorkerConfig,
    assert_exact,
    produce,
    stop_mid_batch,
    wait_all_committed,
)
from tests.support.processes import http_get, wait_until
from tests.unit.test_deploy_k8s import container, find
from tests.unit.test_schemas_event import valid_event

pytestmark = pytest.mark.containers

AUDIENCE = "partner-audit-log-smoke"
ISSUER = "https://issuer.smoke.test"
HEALTHY_WITHIN_S = 120


@pytest.fixture(scope="session")
def engine() -> str:
    images = load_images_module()
    why = images.why_no_engine()
    if why:
        cannot_run(why)
    return str(images.find_engine())


@pytest.fixture(scope="session")
def built(engine: str) -> dict[str, str]:
    """target -> tag, built once per session (from the engine's cache when unchanged)."""
    images = load_images_module()
    try:
        return dict(images.build(engine, images.choose_base(engine), quiet=True))
    except images.BaseUnavailable as error:
        cannot_run(str(error))
        raise


@pytest.fixture
def started() -> Iterator[list[Container]]:
    """Every container started through the list is removed at the end, whatever happened."""
    containers: list[Container] = []
    yield containers
    for each in containers:
        each.remove()


def api_env(config: WorkerConfig, port: int) -> dict[str, str]:
    """Production settings; host network, so the API binds loopback only."""
    return config.env(0) | {
        "AUDIT_EVENTS_TOPIC": config.topic,
        "AUDIT_JWT_SECRET": secrets.token_urlsafe(32),
        "AUDIT_CURSOR_SECRET": secrets.token_urlsafe(32),
        "AUDIT_JWT_AUDIENCE": AUDIENCE,
        "AUDIT_JWT_ISSUER": ISSUER,
        "AUDIT_API_BIND": f"127.0.0.1:{port}",
    }


def production_token(secret: str, partner_id: str) -> str:
    """mint_token's claims plus the audience and issuer production requires."""
    claims = jwt.decode(
        mint_token(secret, "u-1", partner_id, "owner", ()), secret, algorithms=["HS256"]
    )
    return jwt.encode({**claims, "aud": AUDIENCE, "iss": ISSUER}, secret, algorithm="HS256")


def wait_healthy(*containers: Container) -> None:
    for each in containers:
        wait_until(each.healthy, HEALTHY_WITHIN_S, f"{each.name}'s HEALTHCHECK", interval_s=1.0)


def memory_limit_mib(deployment: str) -> float:
    limit = str(container(find("Deployment", deployment))["resources"]["limits"]["memory"])
    assert limit.endswith("Mi"), limit
    return float(limit.removesuffix("Mi"))


def test_an_event_published_with_the_sdk_comes_back_through_the_api_container(
    engine: str,
    built: dict[str, str],
    started: list[Container],
    setup: Setup,
) -> None:
    config, api_port, partner_id = setup(partitions=1), free_port(), "p-100"
    env = api_env(config, api_port)
    worker = WorkerContainer(engine, built["worker"], config.env(0), free_port())
    started.append(worker)
    api = Container(engine, built["api"], env)
    started.append(api)
    wait_healthy(worker, api)

    for each in (worker, api):
        assert each.process_uids() == {IMAGE_UID}, f"{each.name} runs as root"
        assert each.exec("id", "-u").strip() == str(IMAGE_UID)

    api_url = f"http://127.0.0.1:{api_port}"
    token = production_token(env["AUDIT_JWT_SECRET"], partner_id)
    # Production mode is on: a token without the audience and issuer is refused.
    bare = mint_token(env["AUDIT_JWT_SECRET"], "u-1", partner_id, "owner", ())
    assert http_get(f"{api_url}/api/v1/audit-logs", bare)[0] == 401

    event = {
        **valid_event(),
        "event_id": f"container-{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "partner_id": partner_id,
    }
    with AuditPublisher(config.kafka_bootstrap, config.topic) as publisher:
        publisher.publish_and_wait(event)

    def returned() -> dict[str, Any] | None:
        status, body = http_get(f"{api_url}/api/v1/audit-logs/{event['event_id']}", token)
        return json.loads(body) if status == 200 else None

    detail = wait_until(returned, 90, "the event to come back through the API container")
    assert detail["id"] == event["event_id"]
    assert detail["activity"]["code"] == event["action"]

    # The figures deploy/k8s sizes its limits from must hold for the images too.
    for each, deployment in ((worker, "audit-worker"), (api, "audit-api")):
        rss = tree_rss_mib(each.main_pid()) or 0.0
        assert 0 < rss < memory_limit_mib(deployment), f"{deployment}: {rss:.0f} MiB"


@pytest.fixture
def es_proxy(es_url: str) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(es_url)
    yield proxy
    proxy.close()


def test_sigterm_stops_the_worker_container_without_losing_the_batch_in_hand(
    engine: str,
    built: dict[str, str],
    started: list[Container],
    setup: Setup,
    es: Any,
    es_proxy: CuttableProxy,
) -> None:
    """As tests/integration/test_worker_lifecycle.py proves for the process: Elasticsearch
    goes away (for this worker only) mid-batch, then `stop` sends SIGTERM to the container.
    The worker must exit 0 promptly with the batch's offsets uncommitted, and a new
    container must redeliver it: nothing lost, nothing doubled."""
    config = dataclasses.replace(setup(partitions=1), es_url=es_proxy.url)
    dataset = produce(config.kafka_bootstrap, config.topic, 3_000, poison_every=0)
    worker = WorkerContainer(engine, built["worker"], config.env(0), free_port())
    started.append(worker)
    wait_healthy(worker)
    stop_mid_batch(es, config, es_proxy, worker, dataset)

    again = WorkerContainer(engine, built["worker"], config.env(0), free_port())
    started.append(again)
    wait_healthy(again)
    wait_all_committed(config.kafka_bootstrap, config.group_id, config.topic, 1, 120, again.running)
    assert_exact(es, config.index_prefix, dataset, config.kafka_bootstrap, config.dlq_topic)
