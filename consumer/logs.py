"""Structured logs: one JSON object per line on stderr, for people and for log shippers."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged too.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RepeatFilter(logging.Filter):
    """Lets a third-party message through once per `window_s`, counting what it held back.

    aiokafka and librdkafka log every reconnect attempt (ten a second while a broker
    restarts); one line per half minute says the same thing.
    """

    NOISY = (
        "aiokafka",
        "faust",
        "mode",
        "elastic_transport",
        "consumer.dlq.librdkafka",
        "consumer.kafka_probe",
    )

    def __init__(self, window_s: float = 30.0) -> None:
        super().__init__()
        self.window_s = window_s
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith(self.NOISY):
            return True
        # The template, plus its first argument: librdkafka logs everything through one
        # template ("%s [%s] %s") whose first argument is the facility (FAIL, GETPID, ...).
        first = record.args[0] if isinstance(record.args, tuple) and record.args else ""
        key = (record.name, f"{record.msg}|{first}")
        seen = self._last.get(key)
        if seen is not None and record.created - seen[0] < self.window_s:
            self._last[key] = (seen[0], seen[1] + 1)
            return False
        if seen is not None and seen[1]:
            record.repeated_since_last = seen[1]
        self._last[key] = (record.created, 0)
        return True


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the whole process (Faust, aiokafka and ours)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"repeats": {"()": RepeatFilter}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
                "filters": ["repeats"],
            },
        },
        "root": {"level": level, "handlers": ["stderr"]},
        # Faust and aiokafka are chatty at INFO about routine rebalancing internals.
        "loggers": {
            "aiokafka": {"level": "WARNING"},
            "faust": {"level": "WARNING"},
            "mode": {"level": "WARNING"},
            "elastic_transport": {"level": "WARNING"},
            # Its only use is a trace of each request and reply: before checking any level it
            # decodes the whole body whenever a handler exists up the tree (the root's, here),
            # ~1 MB per bulk request on the event loop. Not propagated, it has none, so it is
            # skipped; and audit documents are never logged, whatever the level.
            "elastic_transport.node": {"level": "WARNING", "propagate": False},
        },
    }


def configure(level: str = "INFO") -> None:
    import logging.config

    logging.config.dictConfig(logging_config(level))
