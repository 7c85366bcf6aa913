"""The audit indices' lifecycle as data: names, months, template versions, what retention
deletes and what a migration copies. Pure: no I/O, every rule testable as data.

Names (``{prefix}`` is ``AUDIT_INDEX_PREFIX``):

* ``{prefix}-YYYY.MM``: the month's name, the one the worker writes to. A concrete index
  until the month is first migrated; afterwards an alias (``is_write_index``) to the
  month's newest concrete index.
* ``{prefix}-YYYY.MM-vN``: the month's concrete index made by a migration to template
  version N.
* ``{prefix}-hold-YYYY.MM-{partner key}-{generation}[-vN]``: one partner's logs of an
  expired month, kept because the partner is under legal hold (``partner_key``; the
  generation tells apart two incarnations of the same month index).

Only the indices behind the read alias ``{prefix}`` are managed: an index matching the
pattern but outside the alias is a migration or a hold copy in progress, never a source.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.config import Env
from schemas.index_template import TEMPLATE_VERSION, read_alias

#: Indices made before template versions were recorded in the mapping's `_meta`.
LEGACY_VERSION = 2
KIND_MONTH = "month"
KIND_HOLD = "hold"
DEFAULT_RETENTION_DAYS = 400
RETENTION_DAYS_ENV = "AUDIT_RETENTION_DAYS"


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def of(cls, moment: datetime) -> Month:
        utc = moment.astimezone(UTC)
        return cls(utc.year, utc.month)

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """The first instant of the next month: every log of this month is before it."""
        return Month(self.year + self.month // 12, self.month % 12 + 1).start

    @property
    def label(self) -> str:
        """``2026.01``, as index names spell it."""
        return f"{self.year:04d}.{self.month:02d}"

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass(frozen=True)
class IndexName:
    prefix: str
    kind: str
    month: Month
    partner_key: str = ""
    generation: str = ""
    #: The `-vN` suffix a migration gives; None for a name without one.
    version: int | None = None

    @property
    def base(self) -> str:
        if self.kind == KIND_HOLD:
            hold = f"{self.month.label}-{self.partner_key}-{self.generation}"
            return f"{self.prefix}-hold-{hold}"
        return month_name(self.prefix, self.month)

    @property
    def name(self) -> str:
        return self.base if self.version is None else f"{self.base}-v{self.version}"

    def versioned(self, version: int) -> IndexName:
        return replace(self, version=version)


def month_name(prefix: str, month: Month) -> str:
    """What `schemas.document.index_name` gives for a log of this month."""
    return f"{prefix}-{month.label}"


def partner_key(partner_id: str) -> str:
    """A partner id as a piece of an index name (ids may hold any character)."""
    return hashlib.sha256(partner_id.encode()).hexdigest()[:10]


def hold_index(prefix: str, month: Month, partner_id: str, source_uuid: str) -> IndexName:
    generation = hashlib.sha256(source_uuid.encode()).hexdigest()[:8]
    return IndexName(prefix, KIND_HOLD, month, partner_key(partner_id), generation)


def _name_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(
        rf"{re.escape(prefix)}-(?:(?P<hold>hold)-)?(?P<year>\d{{4}})\.(?P<month>\d{{2}})"
        r"(?(hold)-(?P<key>[0-9a-f]{10})-(?P<gen>[0-9a-f]{8}))(?:-v(?P<version>\d+))?"
    )


def parse_index_name(prefix: str, name: str) -> IndexName | None:
    """The parts of a managed index's name; None for any other name."""
    match = _name_pattern(prefix).fullmatch(name)
    if match is None or not 1 <= int(match["month"]) <= 12:
        return None
    return IndexName(
        prefix,
        KIND_HOLD if match["hold"] else KIND_MONTH,
        Month(int(match["year"]), int(match["month"])),
        match["key"] or "",
        match["gen"] or "",
        int(match["version"]) if match["version"] else None,
    )


# --------------------------------------------------------------------------- facts


@dataclass(frozen=True)
class IndexState:
    """What the cluster says about one concrete index."""

    name: str
    aliases: frozenset[str]
    version: int
    shards: int = 1
    uuid: str = ""
    write_blocked: bool = False
    refresh_interval: str | None = None

    def in_alias(self, alias: str) -> bool:
        return alias in self.aliases


def template_version_of(mappings: Mapping[str, Any]) -> int:
    """The template version an index was made from (its mapping's `_meta`)."""
    meta = mappings.get("_meta") or {}
    version = meta.get("template_version") if isinstance(meta, Mapping) else None
    return int(version) if isinstance(version, int) else LEGACY_VERSION


def index_states(response: Mapping[str, Any]) -> list[IndexState]:
    """From `GET /{prefix}-*` (aliases, mappings and settings of every index)."""
    states = []
    for name, body in sorted(response.items()):
        settings = (body.get("settings") or {}).get("index") or {}
        blocks = settings.get("blocks") or {}
        states.append(
            IndexState(
                name=name,
                aliases=frozenset(body.get("aliases") or {}),
                version=template_version_of(body.get("mappings") or {}),
                shards=int(settings.get("number_of_shards", 1)),
                uuid=str(settings.get("uuid", "")),
                write_blocked=str(blocks.get("write", "false")).lower() == "true",
                refresh_interval=settings.get("refresh_interval"),
            )
        )
    return states


def managed(prefix: str, states: Iterable[IndexState]) -> list[tuple[IndexState, IndexName]]:
    """The indices behind the read alias with a name this module made, oldest month first."""
    alias = read_alias(prefix)
    found = []
    for state in states:
        name = parse_index_name(prefix, state.name)
        if name is not None and state.in_alias(alias):
            found.append((state, name))
    return sorted(found, key=lambda pair: (pair[1].month, pair[0].name))


# --------------------------------------------------------------------------- retention


def retention_cutoff(now: datetime, days: int) -> datetime:
    """Logs before this instant are past retention."""
    return now - timedelta(days=days)


def parse_retention_days(text: str | None) -> int:
    """`AUDIT_RETENTION_DAYS`: a whole number of days, at least 1 (default 400); a
    `ConfigError` (a ValueError) naming the variable otherwise."""
    env = Env({RETENTION_DAYS_ENV: text or ""})
    return env.integer(RETENTION_DAYS_ENV, DEFAULT_RETENTION_DAYS, minimum=1)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd]?)")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``1d`` or a number of seconds, in seconds (more than 0)."""
    match = _DURATION.fullmatch(text.strip().lower())
    seconds = float(match[1]) * _UNIT_SECONDS[match[2]] if match else 0.0
    if seconds <= 0:
        raise ValueError(f"not a duration: {text!r} (say 90s, 30m, 24h or 1d)")
    return seconds


@dataclass(frozen=True)
class Expired:
    """An index every log of which is past retention (by its name; checked by a query
    before it is deleted)."""

    state: IndexState
    name: IndexName


@dataclass
class RetentionPlan:
    cutoff: datetime
    expired: list[Expired]
    #: (index, why) for indices past retention that stay.
    kept: list[tuple[str, str]]


def plan_retention(
    prefix: str,
    states: Iterable[IndexState],
    now: datetime,
    days: int,
    held_partner_keys: frozenset[str] = frozenset(),
) -> RetentionPlan:
    """Which whole indices retention may delete: those whose newest possible log (the end
    of their month) is older than the cutoff; never the current month's (the one being
    written to); never a hold copy of a partner still under hold."""
    cutoff = retention_cutoff(now, days)
    current = Month.of(now)
    plan = RetentionPlan(cutoff, [], [])
    for state, name in managed(prefix, states):
        if name.month >= current or name.month.end > cutoff:
            continue
        if name.kind == KIND_HOLD and name.partner_key in held_partner_keys:
            plan.kept.append((state.name, "its partner is under legal hold"))
            continue
        plan.expired.append(Expired(state, name))
    return plan


# --------------------------------------------------------------------------- migrations


@dataclass(frozen=True)
class Migration:
    """Copy `source` into `target` (the template's version), then swap them atomically."""

    source: str
    target: str
    #: The month's name, which becomes an alias writing to `target` (None for hold copies,
    #: which nothing writes to).
    write_alias: str | None
    month: Month
    version: int


@dataclass
class MigrationPlan:
    version: int
    migrations: list[Migration]
    #: Indices left alone, and why.
    notes: list[str]
    #: Swaps a stopped run left half done: the target is behind the read alias, the source
    #: (out of it, writes blocked) still exists and still owns the month's name.
    unfinished: list[Migration] = field(default_factory=list)


def plan_migrations(
    prefix: str, states: Iterable[IndexState], version: int = TEMPLATE_VERSION
) -> MigrationPlan:
    """Every index behind the read alias made from an older template version, to be copied
    into an index of `version`, oldest month first; and the swaps a stopped run left."""
    states = list(states)
    plan = MigrationPlan(version, [], [], unfinished_swaps(prefix, states, version))
    alias = read_alias(prefix)
    for state in states:
        if state.in_alias(alias) and parse_index_name(prefix, state.name) is None:
            plan.notes.append(f"{state.name}: not named by this tool; left alone")
    for state, name in managed(prefix, states):
        if state.version > version:
            plan.notes.append(
                f"{state.name}: template version {state.version}, newer than this "
                f"release's {version}; left alone"
            )
        elif state.version < version:
            plan.migrations.append(_migration(prefix, state.name, name, version))
    return plan


def unfinished_swaps(prefix: str, states: list[IndexState], version: int) -> list[Migration]:
    """Sources out of the read alias, writes blocked, whose target is behind it."""
    alias = read_alias(prefix)
    live = {state.name for state in states if state.in_alias(alias)}
    found = []
    for state in states:
        name = parse_index_name(prefix, state.name)
        if name is None or state.in_alias(alias) or not state.write_blocked:
            continue
        migration = _migration(prefix, state.name, name, version)
        if migration.target in live and migration.target != state.name:
            found.append(migration)
    return found


def _migration(prefix: str, source: str, name: IndexName, version: int) -> Migration:
    write_alias = month_name(prefix, name.month) if name.kind == KIND_MONTH else None
    return Migration(source, name.versioned(version).name, write_alias, name.month, version)


def copy_rate(copied: int, seconds: float) -> str:
    return f"{copied / seconds:,.0f} logs/s" if seconds > 0 else "-"


def progress_line(what: str, copied: int, total: int, seconds: float, resumed_at: int = 0) -> str:
    """`resumed_at`: what an earlier run copied (not part of this run's rate)."""
    share = f" ({100 * copied / total:.0f} %)" if total else ""
    rate = copy_rate(copied - resumed_at, seconds)
    return f"{what}: {copied:,}/{total:,} logs copied{share}, {rate}"
