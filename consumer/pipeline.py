"""Pure core of the worker: raw Kafka records in, index actions and dead letters out.

No I/O here, so every rule is unit-testable; the adapters (indexer, dlq, app) do the I/O.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from schemas.dead_letter import REASON_NORMALIZATION_FAILED
from schemas.document import NAMESPACE, serialized_log
from schemas.event import InvalidEvent
from schemas.event_fast import parse_event

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RawRecord:
    """One Kafka record as consumed: the bytes exactly as produced, and where they came from."""

    value: bytes | None
    topic: str
    partition: int
    offset: int
    key: bytes | None = None
    timestamp_ms: int | None = None
    #: The consumer generation it was fetched in: a record fetched before a rebalance is
    #: never committed (None: not fetched by a consumer, as in tests and benchmarks).
    generation: int | None = None


@dataclass(frozen=True)
class IndexAction:
    """One `create` of an audit document, remembering the record it came from."""

    record: RawRecord
    index: str
    doc_id: str
    document: Mapping[str, Any]
    #: The content fingerprint (also in the document): tells a redelivery from a reused id.
    fingerprint: str = ""
    #: The document as JSON, serialized once in the pure core and sent as is (empty: not yet).
    source: bytes = b""
    #: The integrity leaf of the stored document, hashed from that same serialization
    #: (None: not computed; the digests then hash the document themselves).
    leaf: str | None = None

    def bulk_lines(self) -> bytes:
        """The action's two lines of a bulk request body: the `create` and its source (the
        bytes the core serialized, sent as they are)."""
        # op_type=create + a deterministic _id: a redelivered event is a 409, never a copy.
        header = orjson.dumps({"create": {"_index": self.index, "_id": self.doc_id}})
        return b"".join((header, b"\n", self.source or orjson.dumps(self.document), b"\n"))


@dataclass(frozen=True)
class DeadLetter:
    """A record that must go to the dead-letter topic unchanged, with why."""

    record: RawRecord
    reason: str
    errors: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Processed:
    actions: list[IndexAction]
    dead_letters: list[DeadLetter]


def tune_garbage_collector() -> None:
    """Collect less often, and never trace what start-up made (modules, Faust, clients).

    The pure core makes ~100 short-lived containers per event, nearly all freed by reference
    counting; CPython's default (a young collection every 700 allocations, each also visiting
    whatever survived) spent 15-20 % of it tracing them (B1a). Called once by the worker
    before it consumes, and by B1a, which measures the same core.
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 10)


def process_batch(records: Iterable[RawRecord], index_prefix: str, now: datetime) -> Processed:
    """Validate and normalize a batch; every record becomes exactly one action or dead letter."""
    actions: list[IndexAction] = []
    dead_letters: list[DeadLetter] = []
    for record in records:
        outcome = process_record(record, index_prefix, now)
        if isinstance(outcome, IndexAction):
            actions.append(outcome)
        else:
            dead_letters.append(outcome)
    return Processed(actions, dead_letters)


def process_record(record: RawRecord, index_prefix: str, now: datetime) -> IndexAction | DeadLetter:
    try:
        # `now` from the caller, not the clock: the "24 h in the future" rule stays testable.
        event = parse_event(record.value, now=now)
    except InvalidEvent as invalid:
        return DeadLetter(record, invalid.reason, _jsonable_errors(invalid.errors))
    try:
        # Serialized here, once, in the worker thread: the bulk call sends these bytes as is,
        # and the digests take the leaf hashed from them (not a second encoding on the loop).
        stored = serialized_log(index_prefix, event, now)
    except Exception as error:  # a normalization bug must not stop the worker: dead-letter it
        log.exception(
            "normalization failed at %s/%s@%s", record.topic, record.partition, record.offset
        )
        return DeadLetter(record, REASON_NORMALIZATION_FAILED, {"_document": [repr(error)]})
    document = stored.document
    return IndexAction(
        record,
        stored.index_name,
        stored.doc_id,
        document,
        document[NAMESPACE]["fingerprint"],
        stored.source,
        stored.leaf,
    )


def _jsonable_errors(errors: Any) -> dict[str, Any]:
    """Field errors as plain JSON (marshmallow nests dicts and may key list items by int)."""
    if not errors:
        return {}
    if isinstance(errors, Mapping):
        return {str(key): _jsonable_value(value) for key, value in errors.items()}
    return {"_schema": _jsonable_value(errors)}


def _jsonable_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_jsonable_value(item) for item in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def commit_offsets(records: Sequence[RawRecord]) -> dict[tuple[str, int], int]:
    """The Kafka offsets to commit once every record of the batch is handled.

    Kafka's committed offset is the *next* offset to read, hence max + 1 per partition.
    """
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        key = (record.topic, record.partition)
        offsets[key] = max(offsets.get(key, -1), record.offset + 1)
    return offsets
