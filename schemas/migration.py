"""`audit-log indices migrate`: move every index made from an older template version into
one of the current version, while the worker writes and readers read.

Per index (`schemas.lifecycle.plan_migrations` says which):

1. create the target from the template and take it out of the read alias (empty: no
   reader can see it, and nothing writes to it);
2. copy the source into it shard by shard in `_seq_no` order, each page's documents
   re-created with `op_type=create` (the search representation recomputed, `_source`
   unchanged); the last copied `_seq_no` of each shard is checkpointed in the lifecycle
   index after every page, so a crashed run resumes where it stopped. Only operations up to
   the shard's global checkpoint are copied (all of them are visible after a refresh; a
   later one may become visible before an earlier one), and the copy chases the writes
   still arriving until a round copies less than a page;
3. block writes to the source (the block API waits for writes in flight) and copy what came
   in since: from here the worker's writes to this month are refused and retried by it;
4. verify: equal counts, a random sample of documents equal in `_source`, and a few of them
   found through the search representation in the target;
5. one `_aliases` request moves the read alias from the source to the target: readers see
   the source until this instant, the target after it. Once no search that resolved the
   alias before still reads the source (its shards would fail under it, and the reader miss
   its logs), a second request deletes the source and makes the month's name an alias
   writing to the target; the worker's retried writes then land there. A run stopped between
   the two is finished by the next one (`plan_migrations`' `unfinished`).

`_reindex` would copy `_source` only: the search representation is not part of it and can
only be recomputed here (no scripts on the minimal distribution), so it is never used.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.es_rest import StoreError
from schemas.lifecycle import Migration, MigrationPlan, progress_line
from schemas.lifecycle_store import Cluster, now_text
from schemas.search import text_query

Say = Callable[[str], None]
#: How long the source's last writes may take to settle after the block.
SETTLE_TIMEOUT_S = 60.0
#: Chasing rounds before the source is blocked even if writes keep coming.
MAX_CHASE_ROUNDS = 20
SEARCH_CHECKS = 3
#: How long a source out of the read alias may stay for searches still reading it (an export's
#: point in time); its month's writes wait meanwhile, so this is short.
SOURCE_IN_USE_TIMEOUT_S = 30.0


@dataclass
class MigrateOptions:
    page_size: int = 1000
    sample: int = 100
    progress_every_s: float = 5.0
    say: Say = print


@dataclass
class Checkpoint:
    """What a migration has copied so far (kept in the lifecycle index)."""

    record_id: str
    record: dict[str, Any]

    @property
    def after(self) -> dict[int, int]:
        return {int(shard): int(seq) for shard, seq in self.record.get("after", {}).items()}

    def advance(self, shard: int, seq_no: int, created: int) -> None:
        self.record["after"] = {**self.record.get("after", {}), str(shard): seq_no}
        self.record["copied"] = int(self.record.get("copied", 0)) + created


@dataclass
class Copier:
    """Copies the documents of `source` (matching `query`) into `target`, page by page."""

    cluster: Cluster
    source: str
    target: str
    page_size: int
    query: Mapping[str, Any] | None = None
    on_page: Callable[[Checkpoint], None] = field(default=lambda _checkpoint: None)

    def copy_upto(self, checkpoint: Checkpoint, upto: Mapping[int, int]) -> int:
        """Copy every document with checkpoint < seq_no <= upto[shard]; returns how many
        were created (not counting those an earlier run copied)."""
        created = 0
        for shard, last in sorted(upto.items()):
            after = checkpoint.after.get(shard, -1)
            while after < last:
                hits = self.cluster.page(
                    self.source, shard, after, last, self.page_size, self.query
                )
                if not hits:
                    break
                result = self.cluster.bulk_create(self.target, hits)
                after = int(hits[-1]["sort"][0])
                checkpoint.advance(shard, after, result.created)
                created += result.created
                self.on_page(checkpoint)
        return created

    def settled_checkpoints(self) -> dict[int, int]:
        """The shards' global checkpoints, made visible by a refresh."""
        stats = self.cluster.checkpoints(self.source)
        points = {shard: point for shard, (point, _max) in stats.items()}
        self.cluster.refresh(self.source)
        return points

    def chase(self, checkpoint: Checkpoint) -> None:
        """Copy while writes keep coming, until a round copies less than a page."""
        for _round in range(MAX_CHASE_ROUNDS):
            if self.copy_upto(checkpoint, self.settled_checkpoints()) < self.page_size:
                return

    def freeze_and_finish(self, checkpoint: Checkpoint) -> None:
        """Block writes to the source, wait for the last ones to settle, copy them."""
        self.cluster.block_writes(self.source)
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            points = self.cluster.checkpoints(self.source)
            if all(point == maximum for point, maximum in points.values()):
                break
            if time.monotonic() > deadline:
                raise StoreError(f"{self.source}: writes did not settle in {SETTLE_TIMEOUT_S:g} s")
            time.sleep(0.2)
        self.copy_upto(checkpoint, self.settled_checkpoints())


def verify_copy(cluster: Cluster, source: str, target: str, sample: int) -> list[str]:
    """What does not hold between a frozen source and its copy (nothing: verified)."""
    cluster.refresh(target)
    problems = []
    counts = cluster.count(source), cluster.count(target)
    if counts[0] != counts[1]:
        problems.append(f"{source} holds {counts[0]:,} logs, {target} {counts[1]:,}")
    hits = cluster.sample(source, sample, seed=counts[0]) if sample else []
    copies = cluster.sources(target, [hit["_id"] for hit in hits])
    for hit in hits:
        if copies.get(hit["_id"]) != hit["_source"]:
            problems.append(f"log {hit['_source']['event']['id']} differs in {target}")
    for hit in hits[:SEARCH_CHECKS]:
        clause = text_query(hit["_source"]["event"]["id"])
        query = {"bool": {"filter": [{"ids": {"values": [hit["_id"]]}}, clause]}}
        if not cluster.search(target, {"query": query, "size": 1, "_source": False}):
            problems.append(f"log {hit['_source']['event']['id']} is not searchable in {target}")
    return problems


class Migrator:
    def __init__(self, cluster: Cluster, options: MigrateOptions) -> None:
        self.cluster = cluster
        self.options = options

    def run(self, plan: MigrationPlan) -> None:
        for note in plan.notes:
            self.options.say(note)
        for migration in plan.unfinished:
            self.options.say(f"{migration.source}: finishing the swap to {migration.target}")
            finish_swap(self.cluster, migration, self.options.say)
        for migration in plan.migrations:
            self.migrate(migration)

    def migrate(self, migration: Migration) -> None:
        checkpoint = self._checkpoint(migration)
        original_refresh = self._prepare_target(migration, checkpoint)
        total = self.cluster.count(migration.source)
        self.options.say(f"{migration.source} -> {migration.target}: {total:,} logs")
        copier = Copier(
            self.cluster,
            migration.source,
            migration.target,
            self.options.page_size,
            on_page=self._progress(migration, total, int(checkpoint.record["copied"])),
        )
        copier.chase(checkpoint)
        blocked_at = time.monotonic()
        copier.freeze_and_finish(checkpoint)
        self.cluster.set_refresh_interval(migration.target, original_refresh)
        self._verify_and_swap(migration)
        blocked_s = time.monotonic() - blocked_at
        checkpoint.record.update(state="done", finished_at=now_text(), blocked_s=blocked_s)
        self.cluster.records.put(checkpoint.record_id, checkpoint.record, listed=True)
        self.options.say(
            f"{migration.source} -> {migration.target}: done "
            f"({self.cluster.count(migration.target):,} logs, verified, alias swapped; "
            f"writes to it waited {blocked_s:.1f} s)"
        )

    def _verify_and_swap(self, migration: Migration) -> None:
        problems = verify_copy(
            self.cluster, migration.source, migration.target, self.options.sample
        )
        if problems:
            # Nothing swapped: the source takes writes again; a rerun resumes the copy.
            self.cluster.unblock_writes(migration.source)
            raise StoreError(f"{migration.source} not swapped: {'; '.join(problems[:5])}")
        self._swap(migration)

    def _checkpoint(self, migration: Migration) -> Checkpoint:
        record_id = f"migration:{migration.target}"
        record = self.cluster.records.get(record_id)
        if record is None or record.get("source") != migration.source:
            record = {
                "kind": "migration",
                "index": migration.source,
                "source": migration.source,
                "target": migration.target,
                "state": "copying",
                "after": {},
                "copied": 0,
                "started_at": now_text(),
            }
        elif record.get("after"):
            self.options.say(f"{migration.source}: resuming after {record['copied']:,} logs")
        return Checkpoint(record_id, record)

    def _prepare_target(self, migration: Migration, checkpoint: Checkpoint) -> str | None:
        """The target, created when missing, out of the read alias, refreshing rarely
        while it fills (nobody reads it yet); returns its own refresh interval."""
        state = self.cluster.state(migration.target)
        if state is None:
            self.cluster.create_isolated(migration.target)
            state = self.cluster.state(migration.target)
            assert state is not None
        elif state.in_alias(self.cluster.alias):
            self.cluster.leave_read_alias(migration.target)
        if state.version != migration.version:
            raise StoreError(
                f"{migration.target} was made from template version {state.version}, not "
                f"{migration.version}: has an older release installed its template again?"
            )
        if "refresh_interval" not in checkpoint.record:
            checkpoint.record["refresh_interval"] = state.refresh_interval
        self.cluster.records.put(checkpoint.record_id, checkpoint.record)
        self.cluster.set_refresh_interval(migration.target, "-1")
        refresh: str | None = checkpoint.record["refresh_interval"]
        return refresh

    def _progress(
        self, migration: Migration, total: int, resumed_at: int
    ) -> Callable[[Checkpoint], None]:
        started = time.monotonic()
        last = [started]

        def on_page(checkpoint: Checkpoint) -> None:
            self.cluster.records.put(checkpoint.record_id, checkpoint.record)
            now = time.monotonic()
            if now - last[0] >= self.options.progress_every_s:
                last[0] = now
                copied = int(checkpoint.record["copied"])
                line = progress_line(migration.source, copied, total, now - started, resumed_at)
                self.options.say(line)

        return on_page

    def _swap(self, migration: Migration) -> None:
        """Readers move at once; the source goes once no search still reads it."""
        alias = self.cluster.alias
        self.cluster.aliases(
            [
                {"add": {"index": migration.target, "alias": alias}},
                {"remove": {"index": migration.source, "alias": alias}},
            ]
        )
        finish_swap(self.cluster, migration, self.options.say)


def finish_swap(cluster: Cluster, migration: Migration, say: Say) -> None:
    """Delete the source (out of the read alias, writes blocked) once unused, and make the
    month's name write to the target: the worker's retried writes land there."""
    if not cluster.wait_unused(migration.source, SOURCE_IN_USE_TIMEOUT_S):
        say(f"{migration.source}: still read after {SOURCE_IN_USE_TIMEOUT_S:g} s; deleted anyway")
    actions: list[dict[str, Any]] = [{"remove_index": {"index": migration.source}}]
    if migration.write_alias:
        target = migration.target
        alias = {"index": target, "alias": migration.write_alias, "is_write_index": True}
        actions.append({"add": alias})
    cluster.aliases(actions)
