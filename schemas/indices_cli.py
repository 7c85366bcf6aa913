"""``audit-log indices``: the audit indices' lifecycle (retention, legal holds, migrations).

    audit-log indices status                       # indices, versions, holds, work in progress
    audit-log indices retention --dry-run          # what AUDIT_RETENTION_DAYS would delete
    audit-log indices retention [--every 24h]      # delete it (and record it), once or daily
    audit-log indices hold add p-100 --reason "case 2026-17"
    audit-log indices hold list | release p-100
    audit-log indices migrate [--dry-run]          # move old indices to the current template

Elasticsearch from ELASTICSEARCH_URL (and _API_KEY, _USERNAME/_PASSWORD, _CA_CERTS); the
retention's audit events go to Kafka (KAFKA_BOOTSTRAP_SERVERS, topic AUDIT_EVENTS_TOPIC).
Exit codes: 0 done; 1 something could not be done (said on stderr), 2 bad arguments or
variables, Elasticsearch or Kafka unreachable. Operators' guide: README, "Index lifecycle".
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from schemas.cli_args import whole_number
from schemas.cli_settings import CliSettings
from schemas.es_rest import RestClient, StoreError, quote
from schemas.index_template import TEMPLATE_VERSION
from schemas.kafka_config import quiet_logger
from schemas.lifecycle import DEFAULT_RETENTION_DAYS, managed, parse_duration, plan_migrations
from schemas.lifecycle_store import Cluster
from schemas.migration import MigrateOptions, Migrator
from schemas.publisher import AuditPublisher, BrokerUnavailable, DeliveryError
from schemas.retention import Recorder, Retention, place_hold, release_hold

EXIT_FAILED = 1
EXIT_ERROR = 2
#: After a failed scheduled run, the next attempt comes this much sooner than a day.
RETRY_AFTER_S = 600.0


def _say(message: str) -> None:
    print(f"audit-log: {message}", file=sys.stderr, flush=True)


def add_indices(
    commands: Any, parser_class: type[argparse.ArgumentParser], settings: CliSettings
) -> None:
    indices = commands.add_parser(
        "indices",
        help="retention, legal holds and template migrations of the audit indices",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = parser_class(add_help=False)
    common.add_argument(
        "--index-prefix",
        default=settings.index_prefix,
        help="default: $AUDIT_INDEX_PREFIX or %(default)s",
    )
    actions = indices.add_subparsers(dest="indices_command", required=True)
    status = actions.add_parser("status", parents=[common], help="indices, holds, migrations")
    status.set_defaults(run=cmd_status)
    _add_retention(actions, common, settings)
    _add_hold(actions, common, parser_class)
    migrate = actions.add_parser(
        "migrate",
        parents=[common],
        help="copy indices of older template versions into the current one, swap atomically",
    )
    migrate.add_argument("--dry-run", action="store_true", help="say what would be copied")
    migrate.add_argument("--page-size", type=_positive, default=1000, help="logs per request")
    migrate.add_argument(
        "--sample", type=_positive, default=100, help="logs compared after each copy"
    )
    migrate.set_defaults(run=cmd_migrate)


def _add_retention(actions: Any, common: argparse.ArgumentParser, settings: CliSettings) -> None:
    retention = actions.add_parser(
        "retention",
        parents=[common],
        help="delete whole monthly indices past AUDIT_RETENTION_DAYS (and record it)",
    )
    retention.add_argument("--dry-run", action="store_true", help="say what would go")
    retention.add_argument(
        "--days",
        type=_positive,
        default=settings.retention_days,
        help=f"default: $AUDIT_RETENTION_DAYS or {DEFAULT_RETENTION_DAYS} (here: %(default)s)",
    )
    retention.add_argument(
        "--every",
        type=_duration,
        default=None,
        metavar="DURATION",
        help="run now, then every DURATION (e.g. 24h) until stopped; a failed run is "
        "retried after 10 minutes",
    )
    retention.add_argument(
        "--topic",
        default=settings.events_topic,
        help="where the retention's audit events go (default: $AUDIT_EVENTS_TOPIC)",
    )
    retention.set_defaults(run=cmd_retention)


def _add_hold(
    actions: Any, common: argparse.ArgumentParser, parser_class: type[argparse.ArgumentParser]
) -> None:
    hold = actions.add_parser(
        "hold", help="legal holds: a held partner's logs outlive the retention"
    )
    verbs = hold.add_subparsers(dest="hold_command", required=True)
    listing = verbs.add_parser("list", parents=[common], help="partners under legal hold")
    listing.set_defaults(run=cmd_hold_list)
    add = verbs.add_parser("add", parents=[common], help="place a partner under legal hold")
    add.add_argument("partner")
    add.add_argument("--reason", required=True, help="e.g. the case reference")
    add.set_defaults(run=cmd_hold_add)
    release = verbs.add_parser("release", parents=[common], help="lift a partner's hold")
    release.add_argument("partner")
    release.set_defaults(run=cmd_hold_release)


def _positive(text: str) -> int:
    return whole_number(text, 1)


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _cluster(args: argparse.Namespace) -> Cluster:
    return Cluster(RestClient(args.settings.elasticsearch), args.index_prefix)


def _operator() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        return f"uid {os.getuid()}"


# --------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    states = cluster.states()
    installed = cluster.installed_template_version()
    sizes = _sizes(cluster)
    live = managed(cluster.prefix, states)
    print(
        f"read alias {cluster.alias}: {len(live)} index(es); template version "
        f"{installed if installed is not None else 'not installed'} "
        f"(this release: {TEMPLATE_VERSION})"
    )
    for state, name in live:
        docs, size = sizes.get(state.name, ("?", "?"))
        flags = [f"v{state.version}", f"{docs} logs", size]
        flags += ["writes blocked"] if state.write_blocked else []
        print(f"  {state.name:<48} {name.month}  {'  '.join(flags)}")
    for outside in (s.name for s in states if not s.in_alias(cluster.alias)):
        print(f"  {outside:<48} outside the alias: a copy in progress (migrate, retention)")
    for hold in cluster.records.find("hold", active=True):
        print(f"legal hold: {hold['partner_id']} since {hold['placed_at']}: {hold['reason']}")
    for record in cluster.records.find("migration", state="copying"):
        print(f"migration in progress: {record['source']} -> {record['target']}")
    pending = plan_migrations(cluster.prefix, states).migrations
    if pending:
        print(f"{len(pending)} index(es) to migrate to version {TEMPLATE_VERSION}")
    return 0


def _sizes(cluster: Cluster) -> dict[str, tuple[str, str]]:
    path = f"/_cat/indices/{quote(cluster.prefix)}-*?format=json&h=index,docs.count,store.size"
    reply: Any = cluster.rest.call("GET", path, missing_ok=True)
    rows = reply if isinstance(reply, list) else []
    return {row["index"]: (row["docs.count"], row["store.size"]) for row in rows}


# --------------------------------------------------------------------------- retention


def _recorder(args: argparse.Namespace) -> Callable[[], Recorder]:
    kafka = args.settings.kafka

    def make() -> Recorder:
        return AuditPublisher(
            kafka.bootstrap_servers,
            topic=args.topic,
            logger=quiet_logger("schemas.indices.kafka"),
            **kafka.security_config(),
        )

    return make


def cmd_retention(args: argparse.Namespace) -> int:
    recorder = None if args.dry_run else _recorder(args)
    retention = Retention(_cluster(args), recorder, args.days, _say)
    if args.every is None:
        retention.run(datetime.now(UTC), dry_run=args.dry_run)
        return 0
    while True:  # stopped by a signal (the supervisor, the container runtime)
        wait = args.every
        try:
            retention.run(datetime.now(UTC), dry_run=args.dry_run)
        except (StoreError, BrokerUnavailable, DeliveryError) as error:
            _say(f"retention failed: {error}; next attempt in {RETRY_AFTER_S / 60:g} min")
            wait = min(wait, RETRY_AFTER_S)
        time.sleep(wait)


# --------------------------------------------------------------------------- holds


def cmd_hold_list(args: argparse.Namespace) -> int:
    holds = list(_cluster(args).records.find("hold", active=True))
    for hold in holds:
        since = f"since {hold['placed_at']} by {hold['placed_by']}"
        print(f"{hold['partner_id']}\t{since}\t{hold['reason']}")
    _say(f"{len(holds)} partner(s) under legal hold")
    return 0


def cmd_hold_add(args: argparse.Namespace) -> int:
    if not 1 <= len(args.partner) <= 64:
        _say("a partner id has 1 to 64 characters")
        return EXIT_ERROR
    place_hold(_cluster(args), args.partner, args.reason, _operator())
    _say(f"partner {args.partner} is under legal hold: retention keeps its logs")
    return 0


def cmd_hold_release(args: argparse.Namespace) -> int:
    try:
        release_hold(_cluster(args), args.partner, _operator())
    except StoreError as error:
        _say(str(error))
        return EXIT_FAILED
    _say(f"partner {args.partner}: hold released; retention deletes its expired logs next run")
    return 0


# --------------------------------------------------------------------------- migrations


def cmd_migrate(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    if not args.dry_run:
        cluster.ensure_template()
        cluster.records.ensure()
    plan = plan_migrations(cluster.prefix, cluster.states())
    if not plan.migrations and not plan.unfinished:
        for note in plan.notes:
            _say(note)
        _say(f"every index behind {cluster.alias} is at template version {TEMPLATE_VERSION}")
        return 0
    if args.dry_run:
        for migration in plan.migrations:
            count = cluster.count(migration.source)
            print(f"{migration.source} -> {migration.target}: {count:,} logs")
        return 0
    options = MigrateOptions(page_size=args.page_size, sample=args.sample, say=_say)
    Migrator(cluster, options).run(plan)
    done = len(plan.migrations) + len(plan.unfinished)
    _say(f"{done} index(es) migrated to template version {TEMPLATE_VERSION}")
    return 0
