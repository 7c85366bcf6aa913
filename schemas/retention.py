"""`audit-log indices retention`: delete whole monthly indices past `AUDIT_RETENTION_DAYS`.

Which indices may go is `schemas.lifecycle.plan_retention` (by their month); before one
goes, this module checks, with queries, what the name only suggests:

1. the index holds no log at or after the cutoff (else it stays, and the run says why);
2. it is blocked for writes (a late event of that month waits, retried by the worker, and
   lands in a new index of that month once this one is gone), and checked again;
3. the logs of partners under legal hold are copied into one hold index per partner
   (created out of the read alias, so no reader sees them twice), counted;
4. a retention record (lifecycle index) names the index, its month, the cutoff and the logs
   per partner, before anything is deleted;
5. one `_aliases` request takes the index out of the read alias and puts the hold copies
   behind it: readers see the held logs before and after, never twice, never missing; the
   index is deleted once no search that resolved the alias before still reads it (its
   shards would fail, and that reader would miss their logs);
6. each partner that lost logs gets an `audit_log.expire` audit event (published and
   acknowledged), so its owner finds in its own audit log what was deleted and why.

A crash at any step is finished by the next run: the record says what was planned, the
events' ids are derived from the index, so publishing twice stores them once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from schemas import fields
from schemas.catalogue import EXPIRE_ACTION
from schemas.document import iso_ms
from schemas.es_rest import StoreError
from schemas.lifecycle import (
    KIND_HOLD,
    KIND_MONTH,
    Expired,
    RetentionPlan,
    hold_index,
    partner_key,
    plan_retention,
)
from schemas.lifecycle_store import Cluster, now_text
from schemas.migration import Checkpoint, Copier

ACTOR_ID = "audit-log-retention"
SERVICE = "audit-log indices retention"
STATE_PLANNED, STATE_DELETED, STATE_RECORDED = "planned", "deleted", "recorded"
#: How long an expired index out of the read alias may stay for searches still reading it (a
#: long export's point in time); nothing waits on it meanwhile.
IN_USE_TIMEOUT_S = 300.0

Say = Callable[[str], None]


class Recorder(Protocol):
    """Where the retention's audit events go (an `AuditPublisher`)."""

    def check_connection(self, timeout: float = 10.0) -> None: ...

    def publish_and_wait(self, event: Mapping[str, Any], timeout: float = 35.0) -> None: ...


@dataclass
class RetentionReport:
    deleted: list[str] = field(default_factory=list)
    kept: list[tuple[str, str]] = field(default_factory=list)
    events: int = 0


def month_words(record: Mapping[str, Any]) -> str:
    return f"{record['month']} ({record['from'][:10]} to {record['to'][:10]}, exclusive)"


def expiry_event(record: Mapping[str, Any], partner_id: str, count: int) -> dict[str, Any]:
    """The audit event telling a partner which of its logs retention deleted. Its id and
    time come from the record, so publishing it again is a redelivery, never a new log."""
    held = record["index_kind"] == KIND_HOLD
    why = (
        "kept under legal hold, hold released"
        if held
        else f"older than the retention of {record['days']} days"
    )
    return {
        "event_id": f"expire:{record['index']}:{record['uuid']}"[:128],
        "schema_version": 1,
        "occurred_at": record["planned_at"],
        "action": EXPIRE_ACTION,
        "partner_id": partner_id,
        "actor": {"type": "system", "id": ACTOR_ID, "name": "Audit log retention"},
        "source": {"channel": "system", "service": SERVICE},
        "object": {
            "type": "audit_log",
            "id": record["index"],
            "name": f"Audit logs of {record['month']}",
        },
        "status": "success",
        "description": f"Deleted {count:,} audit log(s) of {month_words(record)}: {why}",
        "metadata": {
            "index": record["index"],
            "logs_deleted": count,
            "from": record["from"],
            "to": record["to"],
            "cutoff": record["cutoff"],
            "retention_days": record["days"],
            "legal_hold_released": held,
        },
    }


def record_id(record: Mapping[str, Any]) -> str:
    return f"retention:{record['index']}:{record['uuid']}"


def new_record(expired: Expired, plan: RetentionPlan, days: int) -> dict[str, Any]:
    month = expired.name.month
    return {
        "kind": "retention",
        "index": expired.state.name,
        "index_kind": expired.name.kind,
        "uuid": expired.state.uuid,
        "month": str(month),
        "from": iso_ms(month.start),
        "to": iso_ms(month.end),
        "cutoff": iso_ms(plan.cutoff),
        "days": days,
        "planned_at": now_text(),
        "state": STATE_PLANNED,
        "counts": {},
        "held": [],
        "hold_indices": [],
    }


class Retention:
    def __init__(
        self,
        cluster: Cluster,
        recorder: Callable[[], Recorder] | None,
        days: int,
        say: Say = print,
        page_size: int = 1000,
    ) -> None:
        self.cluster = cluster
        self.recorder = recorder
        self.days = days
        self.say = say
        self.page_size = page_size

    def holds(self) -> dict[str, dict[str, Any]]:
        return {h["partner_id"]: h for h in self.cluster.records.find("hold", active=True)}

    def plan(self, now: datetime) -> RetentionPlan:
        held = frozenset(partner_key(partner) for partner in self.holds())
        return plan_retention(self.cluster.prefix, self.cluster.states(), now, self.days, held)

    def run(self, now: datetime, dry_run: bool = False) -> RetentionReport:
        report = RetentionReport()
        if not dry_run:
            self.cluster.records.ensure()
        plan = self.plan(now)
        report.kept += plan.kept
        self.say(
            f"retention {self.days} days: logs before {iso_ms(plan.cutoff)} expire; "
            f"{len(plan.expired)} index(es) past it"
        )
        recorder = None
        if not dry_run:
            self._reconcile()
        if not dry_run and self.recorder is not None:
            recorder = self.recorder()
            # Deletions are recorded as audit events: nothing is deleted without Kafka.
            recorder.check_connection()
        holds = self.holds()
        for expired in plan.expired:
            self._expire(expired, plan, holds, report, dry_run)
        for index, why in report.kept:
            self.say(f"kept {index}: {why}")
        if recorder is not None:
            report.events = self._publish_pending(recorder)
        return report

    def _reconcile(self) -> None:
        """Finish what a stopped run left: an index already out of the read alias is
        deleted; one gone means the deletion happened; either way its events are owed."""
        present = {state.name: state for state in self.cluster.states()}
        for record in self.cluster.records.find("retention", state=STATE_PLANNED):
            state = present.get(record["index"])
            if state is not None and state.uuid == record["uuid"]:
                if state.in_alias(self.cluster.alias):
                    continue  # not swapped yet: the plan takes it again
                self._remove(state.name)
            record.update(state=STATE_DELETED, deleted_at=now_text())
            self.cluster.records.put(record_id(record), record, listed=True)

    def _remove(self, index: str) -> None:
        """Delete an index that has left the read alias, once no search still reads it."""
        if not self.cluster.wait_unused(index, IN_USE_TIMEOUT_S):
            self.say(f"{index}: still read after {IN_USE_TIMEOUT_S:g} s; deleted anyway")
        self.cluster.delete_index(index)

    def _keeps_logs_inside_window(
        self, index: str, plan: RetentionPlan, report: RetentionReport
    ) -> bool:
        """Whether `index` holds a log at or after the cutoff (then it stays, said why)."""
        recent = {"range": {fields.TIMESTAMP: {"gte": iso_ms(plan.cutoff)}}}
        inside = self.cluster.count(index, recent)
        if inside:
            report.kept.append((index, f"{inside:,} log(s) inside the retention window"))
        return inside > 0

    @staticmethod
    def _held(expired: Expired, counts: Mapping[str, int], holds: Mapping[str, Any]) -> list[str]:
        if expired.name.kind != KIND_MONTH:
            return []
        return sorted(partner for partner in counts if partner in holds)

    def _expire(
        self,
        expired: Expired,
        plan: RetentionPlan,
        holds: Mapping[str, Any],
        report: RetentionReport,
        dry_run: bool,
    ) -> None:
        index = expired.state.name
        if self._keeps_logs_inside_window(index, plan, report):  # before blocking anything
            return
        if dry_run:
            counts = self.cluster.partner_counts(index)
            held = sum(counts[p] for p in self._held(expired, counts, holds))
            self.say(
                f"would delete {index} ({expired.name.month}): {sum(counts.values()):,} log(s) "
                f"of {len(counts)} partner(s)"
                + (f"; {held:,} held log(s) would move" if held else "")
            )
            return
        self.cluster.block_writes(index)
        self.cluster.refresh(index)
        if self._keeps_logs_inside_window(index, plan, report):  # and nothing came in since
            self.cluster.unblock_writes(index)
            return
        self._delete(expired, new_record(expired, plan, self.days), holds, report)

    def _delete(
        self,
        expired: Expired,
        record: dict[str, Any],
        holds: Mapping[str, Any],
        report: RetentionReport,
    ) -> None:
        """Record, copy held logs, then delete the (blocked) index in one alias request."""
        index = expired.state.name
        record = self.cluster.records.get(record_id(record)) or record
        record["counts"] = self.cluster.partner_counts(index)
        if expired.name.kind == KIND_HOLD and set(record["counts"]) & set(holds):
            self.cluster.unblock_writes(index)
            report.kept.append((index, "its partner is under legal hold"))
            return
        record["held"] = self._held(expired, record["counts"], holds)
        self.cluster.records.put(record_id(record), record)
        record["hold_indices"] = [self._hold_copy(expired, record, p) for p in record["held"]]
        alias = self.cluster.alias
        self.cluster.aliases(
            [{"add": {"index": hold, "alias": alias}} for hold in record["hold_indices"]]
            + [{"remove": {"index": index, "alias": alias}}]
        )
        self._remove(index)
        record.update(state=STATE_DELETED, deleted_at=now_text())
        self.cluster.records.put(record_id(record), record, listed=True)
        report.deleted.append(index)
        deleted = sum(n for p, n in record["counts"].items() if p not in record["held"])
        held = len(record["held"])
        kept = f"; {held} held partner(s) kept in hold copies" if held else ""
        self.say(f"deleted {index} ({record['month']}): {deleted:,} log(s){kept}")

    def _hold_copy(self, expired: Expired, record: Mapping[str, Any], partner: str) -> str:
        """Copy one held partner's logs of the (blocked) index into its hold index."""
        source = expired.state.name
        target = hold_index(
            self.cluster.prefix, expired.name.month, partner, expired.state.uuid
        ).name
        state = self.cluster.state(target)
        if state is None:
            self.cluster.create_isolated(target)
        elif state.in_alias(self.cluster.alias):
            self.cluster.leave_read_alias(target)
        query = {"term": {fields.PARTNER_ID: partner}}
        copier = Copier(self.cluster, source, target, self.page_size, query=query)
        copier.copy_upto(Checkpoint("", {}), copier.settled_checkpoints())
        self.cluster.refresh(target)
        copied, expected = self.cluster.count(target), record["counts"][partner]
        if copied != expected:
            self.cluster.unblock_writes(source)
            raise StoreError(
                f"{target}: {copied:,} of {expected:,} held logs copied; {source} kept"
            )
        return target

    def _publish_pending(self, recorder: Recorder) -> int:
        """The audit events of every deletion not recorded yet (also an earlier run's)."""
        published = 0
        for record in self.cluster.records.find("retention", state=STATE_DELETED):
            for partner, count in sorted(record["counts"].items()):
                if partner in record["held"]:
                    continue
                recorder.publish_and_wait(expiry_event(record, partner, count))
                published += 1
            record["state"] = STATE_RECORDED
            self.cluster.records.put(record_id(record), record, listed=True)
        if published:
            self.say(f"recorded {published} audit event(s) ({EXPIRE_ACTION})")
        return published


def place_hold(cluster: Cluster, partner_id: str, reason: str, by: str) -> dict[str, Any]:
    cluster.records.ensure()
    record = {
        "kind": "hold",
        "partner_id": partner_id,
        "active": True,
        "reason": reason,
        "placed_at": now_text(),
        "placed_by": by,
    }
    cluster.records.put(f"hold:{partner_id}", record, listed=True)
    return record


def release_hold(cluster: Cluster, partner_id: str, by: str) -> dict[str, Any]:
    record = cluster.records.get(f"hold:{partner_id}")
    if not record or not record.get("active"):
        raise StoreError(f"partner {partner_id} is not under legal hold")
    record.update(active=False, released_at=now_text(), released_by=by)
    cluster.records.put(f"hold:{partner_id}", record, listed=True)
    return record
