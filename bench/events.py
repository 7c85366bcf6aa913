"""Generated events as the benchmarks send them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

SEED = 20261126


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_bytes(event: Mapping[str, Any]) -> bytes:
    """A generated event as the Kafka record value a publisher would send."""
    return json.dumps(
        event, ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")
