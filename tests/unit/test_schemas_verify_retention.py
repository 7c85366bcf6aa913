"""`verify` knows retention: a log its month's deletion accounts for is expired, not deleted,
but only on the word of a signed `audit_log.expire` log of the partner, and only before the
cutoff that deletion applied."""

from __future__ import annotations

import copy
from typing import Any

from schemas.document import build_document
from schemas.event import validate_event
from schemas.integrity import stored_source
from schemas.integrity_verify import Findings, verify_store
from schemas.lifecycle import KIND_MONTH
from schemas.retention import expiry_event
from tests.unit.test_schemas_integrity import KEYS, LONG_AGO, NOW, WINDOW, chain, source, store

LOGS = [source(n) for n in range(6)]  # e-n at 12:00 - n minutes on 2026-12-01
CUTOFF = "2026-12-01T11:57:30.000Z"  # e-3, e-4 and e-5 are older


def expiry_log(**changes: Any) -> dict[str, Any]:
    record = {
        "index": "audit-logs-2026.12",
        "index_kind": KIND_MONTH,
        "uuid": "u-1",
        "month": "2026-12",
        "from": "2026-12-01T00:00:00.000Z",
        "to": "2027-01-01T00:00:00.000Z",
        "cutoff": CUTOFF,
        "days": 400,
        "planned_at": "2026-12-01T12:00:00.000Z",
    }
    event = expiry_event(record, "p-1", 3)
    stored = stored_source(build_document(validate_event(event, now=NOW), NOW))
    stored["audit"]["metadata"].update(changes)
    return stored


def findings(signed: list[dict[str, Any]], given: dict[str, Any]) -> Findings:
    """The six logs and `signed` in digests; e-3..e-5 gone from the store."""
    kept = store(*LOGS[:3], *signed)
    return verify_store(chain([LOGS, signed]), KEYS, kept, WINDOW, LONG_AGO, store(*given))


def test_logs_a_signed_expiry_accounts_for_are_expired_not_deleted() -> None:
    expiry = expiry_log()
    result = findings([expiry], [expiry])
    assert sorted(result.expired) == ["e-3", "e-4", "e-5"]
    assert result.deleted == [] and result.clean


def test_without_an_expiry_they_are_deleted() -> None:
    result = findings([], [])
    assert sorted(result.deleted) == ["e-3", "e-4", "e-5"] and not result.clean


def test_an_expiry_no_digest_signed_excuses_nothing() -> None:
    result = findings([], [expiry_log()])
    assert sorted(result.deleted) == ["e-3", "e-4", "e-5"] and result.expired == []


def test_an_expiry_altered_in_the_store_excuses_nothing() -> None:
    signed = expiry_log()
    widened = copy.deepcopy(signed)
    widened["audit"]["metadata"]["cutoff"] = "2027-01-01T00:00:00.000Z"
    result = findings([signed], [widened])
    assert sorted(result.deleted) == ["e-3", "e-4", "e-5"]


def test_logs_after_the_cutoff_are_still_deleted() -> None:
    """The month's later logs were inside the window: retention never deleted them."""
    expiry = expiry_log()
    kept = store(*LOGS[1:3], expiry)  # e-0 (12:00, after the cutoff) is gone too
    result = verify_store(chain([LOGS, [expiry]]), KEYS, kept, WINDOW, LONG_AGO, store(expiry))
    assert result.deleted == ["e-0"]
    assert sorted(result.expired) == ["e-3", "e-4", "e-5"]
