"""The copy at the heart of a migration (schemas/migration.py), against a fake shard: it copies
exactly the operations up to the global checkpoint, resumes where a checkpoint says, chases
writes that keep coming, and after the block copies what came last."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.lifecycle_store import BulkResult
from schemas.migration import Checkpoint, Copier


@dataclass
class FakeShards:
    """One index of `shards` shards. Each write gets the shard's next seq_no; an operation
    above the global checkpoint is still in flight: never visible, never in a page."""

    shards: int = 1
    docs: dict[int, list[int]] = field(default_factory=dict)  # shard -> seq_nos written
    in_flight: dict[int, int] = field(default_factory=dict)  # shard -> ops not done yet
    copied: list[tuple[int, int]] = field(default_factory=list)  # (shard, seq_no) created
    #: Called on every checkpoints() read: writes that arrive while the copy runs.
    arriving: list[int] = field(default_factory=list)
    blocked: bool = False

    def write(self, shard: int, count: int = 1) -> None:
        assert not self.blocked
        self.docs.setdefault(shard, []).extend(
            range(len(self.docs.get(shard, [])), len(self.docs.get(shard, [])) + count)
        )

    # The Cluster methods a Copier uses ------------------------------------------------------

    def checkpoints(self, _index: str) -> dict[int, tuple[int, int]]:
        if self.arriving and not self.blocked:
            self.write(0, self.arriving.pop(0))
        found = {}
        for shard in range(self.shards):
            written = len(self.docs.get(shard, [])) - 1
            found[shard] = (written - self.in_flight.get(shard, 0), written)
        return found

    def refresh(self, _index: str) -> None:
        pass

    def block_writes(self, _index: str) -> None:
        self.blocked = True
        self.in_flight = {}  # the block waits for writes in flight

    def page(
        self,
        _index: str,
        shard: int,
        after: int,
        upto: int,
        size: int,
        query: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        seqs = [s for s in self.docs.get(shard, []) if after < s <= upto][:size]
        return [{"_id": f"{shard}:{s}", "_source": {}, "sort": [s]} for s in seqs]

    def bulk_create(self, _target: str, hits: list[dict[str, Any]]) -> BulkResult:
        result = BulkResult()
        for hit in hits:
            shard, seq = (int(part) for part in hit["_id"].split(":"))
            if (shard, seq) in self.copied:
                result.existing += 1
            else:
                self.copied.append((shard, seq))
                result.created += 1
        return result


def copier(shards: FakeShards, page_size: int = 10) -> Copier:
    return Copier(shards, "source", "target", page_size)  # type: ignore[arg-type]


def test_copies_up_to_the_checkpoint_in_order_and_remembers_where_it_stopped() -> None:
    shards = FakeShards(shards=2)
    shards.write(0, 25)
    shards.write(1, 7)
    checkpoint = Checkpoint("r", {})
    created = copier(shards).copy_upto(checkpoint, {0: 19, 1: 6})
    assert created == 27
    assert [s for shard, s in shards.copied if shard == 0] == list(range(20))
    assert checkpoint.after == {0: 19, 1: 6}
    assert checkpoint.record["copied"] == 27


def test_a_resumed_copy_starts_after_its_checkpoint() -> None:
    shards = FakeShards()
    shards.write(0, 30)
    checkpoint = Checkpoint("r", {"after": {"0": 14}, "copied": 15})
    assert copier(shards).copy_upto(checkpoint, {0: 29}) == 15
    assert [s for _shard, s in shards.copied] == list(range(15, 30))
    assert checkpoint.record["copied"] == 30


def test_operations_in_flight_wait_for_the_next_round() -> None:
    """A later seq_no may be visible before an earlier one: only up to the global
    checkpoint is copied, so nothing is skipped."""
    shards = FakeShards()
    shards.write(0, 10)
    shards.in_flight = {0: 3}
    c, checkpoint = copier(shards), Checkpoint("r", {})
    c.copy_upto(checkpoint, c.settled_checkpoints())
    assert checkpoint.after == {0: 6}
    c.freeze_and_finish(checkpoint)
    assert sorted(s for _shard, s in shards.copied) == list(range(10))


def test_the_copy_chases_writes_then_the_block_takes_the_last_ones() -> None:
    shards = FakeShards()
    shards.write(0, 100)
    shards.arriving = [40, 25, 12, 3, 2]  # the writes slow down as the copy catches up
    c, checkpoint = copier(shards, page_size=10), Checkpoint("r", {})
    c.chase(checkpoint)
    assert not shards.blocked and shards.arriving  # stopped chasing once a round was small
    c.freeze_and_finish(checkpoint)
    assert sorted(s for _shard, s in shards.copied) == sorted(shards.docs[0])
    assert len(shards.copied) == len(set(shards.copied))
