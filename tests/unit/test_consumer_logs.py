"""JSON log lines, and the filter that keeps reconnect storms to one line per window."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

from consumer.logs import JsonFormatter, RepeatFilter


def make(name: str, msg: str, *args: object, created: float = 100.0) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.WARNING, __file__, 1, msg, args, None)
    record.created = created
    return record


def test_json_line_carries_extra_fields() -> None:
    record = make("consumer", "retrying %s", "bulk")
    record.attempt = 3

    entry = json.loads(JsonFormatter().format(record))

    assert entry["message"] == "retrying bulk"
    assert entry["level"] == "warning" and entry["logger"] == "consumer"
    assert entry["attempt"] == 3


def test_third_party_repeats_are_held_back_within_the_window() -> None:
    repeats = RepeatFilter(window_s=30)
    name, msg = "aiokafka", "Unable connect to node with id %s: %s"

    first = repeats.filter(make(name, msg, 1, "refused", created=100))
    held = [repeats.filter(make(name, msg, 1, "refused", created=100 + i)) for i in range(1, 10)]
    later = make(name, msg, 1, "refused", created=131)

    assert first and not any(held)
    assert repeats.filter(later)
    assert later.repeated_since_last == 9


def test_different_messages_and_our_own_logs_pass() -> None:
    repeats = RepeatFilter(window_s=30)

    assert repeats.filter(make("aiokafka", "a %s", 1))
    assert repeats.filter(make("aiokafka", "b %s", 1))
    assert repeats.filter(make("consumer.dlq.librdkafka", "%s [%s] %s", "FAIL", "p", "x"))
    assert repeats.filter(make("consumer.dlq.librdkafka", "%s [%s] %s", "GETPID", "p", "x"))
    assert all(repeats.filter(make("consumer", "ours")) for _ in range(3))


def test_the_clients_request_trace_never_sees_a_body() -> None:
    """elastic_transport decodes each request and reply body for its trace whenever its
    logger has a handler up the tree, before any level check: with the worker's logging it
    has none, so no bulk body is decoded (or ever logged). In a process of its own: the
    worker's logging is process-wide."""
    probe = (
        "import logging; from consumer.logs import configure; configure('DEBUG'); "
        "print(logging.getLogger().hasHandlers(), "
        "logging.getLogger('elastic_transport.node').hasHandlers())"
    )
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert shown == ["True", "False"]
