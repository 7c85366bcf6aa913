"""`audit-worker`: wait for Kafka and Elasticsearch, install the index template, run the agent."""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from consumer import logs
from consumer.app import create_app
from consumer.backoff import Backoff, RetryLater
from consumer.indexer import ensure_template
from consumer.pipeline import tune_garbage_collector
from consumer.processes import run_processes
from consumer.settings import Settings, SettingsError, load_settings, require_signing_key
from consumer.topics import TopicsMissing, check_topics
from schemas import speedups

log = logging.getLogger("consumer")


def wait_for_kafka(settings: Settings, backoff: Backoff | None = None) -> None:
    """Block until the brokers answer a metadata request; one log line while they do not."""
    config = settings.kafka_client_config()
    config["logger"] = logging.getLogger("consumer.kafka_probe")
    admin = AdminClient(config)
    for attempt in (backoff or Backoff()).retrying_sync(
        f"Kafka at {settings.kafka_bootstrap_servers} not reachable"
    ):
        with attempt:
            try:
                admin.list_topics(timeout=5)
            except KafkaException as error:
                raise RetryLater(error.args[0].str() if error.args else str(error)) from error


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    # Before the worker runs there is nothing in flight: stopping is simply exiting.
    log.info("stopping before start (signal %d)", signum)
    sys.exit(0)


def main() -> None:
    """Console script `audit-worker`."""
    try:
        settings = load_settings()
        require_signing_key(settings)
    except SettingsError as error:
        logs.configure("INFO")
        log.error("configuration error: %s", error)
        sys.exit(2)
    logs.configure(settings.log_level)
    if settings.worker_processes > 1:
        sys.exit(run_processes(settings.worker_processes, settings.worker_port))
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    log.info(
        "audit-worker starting",
        extra={
            "topics": list(settings.topics),
            "group_id": settings.group_id,
            "index_prefix": settings.index_prefix,
            "port": settings.worker_port,
            # Without them (a build with no C compiler) the same work is done, slower.
            "compiled_helpers": speedups.compiled is not None,
        },
    )
    wait_for_kafka(settings)
    try:
        topics = check_topics(settings)
    except TopicsMissing as error:
        log.error("%s", error)
        sys.exit(2)
    ensure_template(settings)
    app = create_app(settings, dlq_max_message_bytes=topics.dlq_max_message_bytes)
    worker = app.Worker(
        loglevel=settings.log_level,
        quiet=True,
        redirect_stdouts=False,
        logging_config=logs.logging_config(settings.log_level),
    )
    tune_garbage_collector()  # after every start-up import and object: they stay untraced
    # Faust installs its own SIGTERM/SIGINT handlers: stop taking, cancel the in-flight batch
    # (uncommitted, so it is redelivered), close the consumer, exit 0.
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
