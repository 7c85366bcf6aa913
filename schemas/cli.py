"""``audit-log``: publish audit events to Kafka; inspect and replay the dead-letter topic.

    audit-log publish events.jsonl        # one JSON event per line ("-" reads stdin)
    audit-log demo --rate 50 --count 1000
    audit-log dlq list                    # dead letters by reason and original topic
    audit-log dlq show 12                 # one letter: headers and payload
    audit-log dlq replay --reason invalid_fields --fix-up 'jq -c ...' [--dry-run]
    audit-log verify --partner p-100 --from 2026-11-01   # logs against signed digests
    audit-log keygen --out signing-key.pem               # the digests' signing key pair
    audit-log indices status | retention | hold | migrate  # the indices' lifecycle

`audit-log COMMAND --help` tells more; `audit-log dlq replay --help` how replay stays safe.

Exit codes: 0 all done; 1 some lines rejected or letters skipped (each named on stderr, the
rest still sent); 2 bad arguments, Kafka unreachable, a topic missing or deliveries failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import IO, Any, NoReturn

from schemas.cli_args import whole_number
from schemas.cli_settings import CliSettings
from schemas.config import DEFAULT_KAFKA_BOOTSTRAP_SERVERS, ConfigError
from schemas.dead_letter import REASONS
from schemas.demo import generate_events
from schemas.dlq_kafka import (
    Connection,
    DlqError,
    NoRecord,
    OriginalRecords,
    ReplayResult,
    TopicReader,
    opened_dlq,
    run_replay,
)
from schemas.dlq_letters import (
    Progress,
    Selection,
    describe_letter,
    format_groups,
    group_letters,
    parse_time,
)
from schemas.dlq_replay import Corrections, CorrectionsError, FixUp, ReplayPlan, Skip
from schemas.es_rest import StoreError
from schemas.event import InvalidEvent, decode_event
from schemas.indices_cli import add_indices
from schemas.kafka_config import quiet_logger
from schemas.publisher import DEFAULT_TOPIC, AuditPublisher, BrokerUnavailable, DeliveryError
from schemas.verify_cli import add_keygen, add_verify

EXIT_REJECTED = 1
EXIT_KAFKA = 2
EXIT_USAGE = 2

DLQ_HELP = """\
Inspect and replay the dead-letter topic (docs/events.md, "Dead letters: the operator's
side"). Reading never joins a consumer group and never commits an offset: each partition is
read up to its end as it was at the start, then the command stops.

  audit-log dlq list [--reason R] [--since 2h]   counts by reason and original topic
  audit-log dlq show 12 [--partition 0]          one letter: headers and payload
  audit-log dlq replay --reason R [--fix-up CMD | --file F] [--dry-run]
"""

REPLAY_HELP = """\
Re-publish dead letters to their original topic (or --to-topic), with their original key
(the partner_id, so each partner's order holds), through an idempotent, acks=all producer;
every delivery is awaited and any failure exits 2.

Replaying is idempotent, so running it twice is safe: the worker stores an event once per
(partner_id, event_id) and content, and a replayed event that is already stored is a no-op.
A replayed event that is still invalid is dead-lettered again by the worker, never lost:
replay does not validate-and-drop, it warns. A letter whose value was too large for the DLQ
(header x-dlq-value-omitted) is replayed from its original record, named in its headers,
while that topic still retains it; otherwise it is skipped with a line saying so.

examples:
  audit-log dlq replay --reason invalid_fields --since 2h --dry-run
  audit-log dlq replay --reason invalid_fields --fix-up "jq -c '.actor.role |= ascii_downcase'"
  audit-log dlq replay --reason not_json --dry-run > letters.jsonl   # edit it, then
  audit-log dlq replay --file letters.jsonl
"""


class _Parser(argparse.ArgumentParser):
    """Argument errors are one line on stderr and exit code 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser(settings: CliSettings | None = None) -> argparse.ArgumentParser:
    """The commands; `settings` (default: from the environment) give the defaults, and reach
    each command as `args.settings`."""
    settings = settings or CliSettings.from_env()
    parser = _Parser(
        prog="audit-log",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(settings=settings)
    kafka = _kafka_options()
    common = _Parser(add_help=False, parents=[kafka])
    common.add_argument("--topic", default=DEFAULT_TOPIC, help="default: %(default)s")
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser(
        "publish", parents=[common], help="publish JSON-lines events from FILE or - (stdin)"
    )
    publish.add_argument("file", metavar="FILE")
    publish.set_defaults(run=cmd_publish)
    demo = commands.add_parser("demo", parents=[common], help="publish a realistic demo stream")
    demo.add_argument("--rate", type=float, default=50.0, help="events per second; 0 = no limit")
    demo.add_argument("--count", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=None, help="default: random")
    demo.add_argument("--days", type=float, default=30.0, help="time span of the events")
    demo.set_defaults(run=cmd_demo)
    _add_dlq(commands, kafka, settings.dlq_topic)
    add_verify(commands, [], settings.index_prefix)
    add_keygen(commands)
    add_indices(commands, _Parser, settings)
    return parser


def _kafka_options() -> argparse.ArgumentParser:
    kafka = _Parser(add_help=False)
    kafka.add_argument(
        "--bootstrap-servers",
        default=None,
        metavar="SERVERS",
        help=f"default: $KAFKA_BOOTSTRAP_SERVERS or {DEFAULT_KAFKA_BOOTSTRAP_SERVERS}",
    )
    kafka.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="seconds to wait for Kafka before giving up (default: 10)",
    )
    return kafka


def _add_dlq(commands: Any, kafka: argparse.ArgumentParser, dlq_topic: str) -> None:
    dlq = commands.add_parser(
        "dlq",
        help="inspect and replay the dead-letter topic",
        description=DLQ_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = _Parser(add_help=False, parents=[kafka])
    where.add_argument(
        "--dlq-topic",
        default=dlq_topic,
        metavar="TOPIC",
        help="the dead-letter topic (default: $AUDIT_DLQ_TOPIC or %(default)s)",
    )
    actions = dlq.add_subparsers(dest="dlq_command", required=True)
    listing = actions.add_parser(
        "list",
        parents=[where, _selection_options()],
        help="count letters by reason and original topic, newest first",
    )
    listing.add_argument("--json", action="store_true", help="one JSON document on stdout")
    listing.set_defaults(run=cmd_dlq_list)
    _add_dlq_show(actions, where)
    _add_dlq_replay(actions, where)


def _selection_options() -> argparse.ArgumentParser:
    options = _Parser(add_help=False)
    chosen = options.add_argument_group("which letters (all of these must hold)")
    chosen.add_argument(
        "--reason",
        action="append",
        choices=REASONS,
        metavar="REASON",
        help=f"repeatable; one of {', '.join(REASONS)}",
    )
    chosen.add_argument("--original-topic", action="append", metavar="TOPIC", help="repeatable")
    chosen.add_argument(
        "--since",
        type=_time,
        metavar="TIME",
        help="failed at or after TIME: RFC 3339, a date (UTC) or an age (30m, 2h, 7d)",
    )
    chosen.add_argument("--until", type=_time, metavar="TIME", help="failed before TIME")
    chosen.add_argument(
        "--partition", type=_count, metavar="N", help="DLQ partition (default: all)"
    )
    chosen.add_argument("--from-offset", type=_count, metavar="N", help="DLQ offset, inclusive")
    chosen.add_argument("--to-offset", type=_count, metavar="N", help="DLQ offset, inclusive")
    return options


def _add_dlq_show(actions: Any, where: argparse.ArgumentParser) -> None:
    show = actions.add_parser(
        "show", parents=[where], help="one letter: its headers decoded and its payload"
    )
    show.add_argument("offset", type=_count, metavar="OFFSET", help="the letter's DLQ offset")
    show.add_argument(
        "--partition", type=_count, default=0, metavar="N", help="DLQ partition (default: 0)"
    )
    show.add_argument(
        "--max-bytes",
        type=_count,
        default=4096,
        help="show at most this much of the payload; 0 = all (default: %(default)s)",
    )
    show.add_argument(
        "--raw",
        action="store_true",
        help="write the value's bytes alone to stdout (a headers-only letter's from its "
        "original record)",
    )
    show.set_defaults(run=cmd_dlq_show)


def _add_dlq_replay(actions: Any, where: argparse.ArgumentParser) -> None:
    replay = actions.add_parser(
        "replay",
        parents=[where, _selection_options()],
        help="re-publish letters to their input topic (idempotent: twice is safe)",
        description=REPLAY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    replay.add_argument("--all", action="store_true", help="every letter (when no selection)")
    replay.add_argument(
        "--to-topic", metavar="TOPIC", help="instead of each letter's original topic"
    )
    source = replay.add_mutually_exclusive_group()
    source.add_argument(
        "--fix-up",
        metavar="COMMAND",
        help="a shell command: the value on stdin, the corrected value on stdout; a non-zero "
        "exit skips the letter. It sees DLQ_REASON, DLQ_ERRORS, DLQ_KEY, DLQ_PARTITION, "
        "DLQ_OFFSET, DLQ_ORIGINAL_TOPIC, DLQ_ORIGINAL_PARTITION, DLQ_ORIGINAL_OFFSET",
    )
    source.add_argument(
        "--file",
        metavar="FILE",
        help="corrected JSON lines to send instead of the letters' values: --dry-run lines "
        "(edited; matched by DLQ partition and offset) or corrected events (matched by "
        "partner_id and event_id); selected letters without a line are not sent",
    )
    replay.add_argument(
        "--fix-up-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="per letter; longer skips the letter (default: 30)",
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="print what would be sent (JSON lines, usable as --file); send nothing",
    )
    replay.add_argument(
        "--progress-every",
        type=_count,
        default=1000,
        metavar="N",
        help="a progress line on stderr every N letters read (default: 1000; 0: never)",
    )
    replay.add_argument(
        "--progress-seconds",
        type=float,
        default=10.0,
        metavar="S",
        help="... and every S seconds (default: 10; 0: never)",
    )
    replay.set_defaults(run=cmd_dlq_replay)


def _time(text: str) -> datetime:
    try:
        return parse_time(text, datetime.now(UTC))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _count(text: str) -> int:
    return whole_number(text)


def _say(message: str) -> None:
    print(f"audit-log: {message}", file=sys.stderr)


@contextmanager
def _publisher(args: argparse.Namespace) -> Iterator[AuditPublisher]:
    """A connected publisher; librdkafka's own log lines are silenced (we report instead)."""
    quiet = quiet_logger("schemas.cli.kafka")
    kafka = args.settings.kafka
    servers = args.bootstrap_servers or kafka.bootstrap_servers
    publisher = AuditPublisher(servers, topic=args.topic, logger=quiet, **kafka.security_config())
    publisher.check_connection(timeout=args.connect_timeout)
    with publisher:  # flushes on exit, also when interrupted
        yield publisher


@contextmanager
def _open_input(name: str) -> Iterator[IO[bytes]]:
    if name == "-":
        yield sys.stdin.buffer
        return
    with open(name, "rb") as handle:
        yield handle


def _publish_lines(publisher: AuditPublisher, lines: Iterable[bytes]) -> tuple[int, int]:
    sent = rejected = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            publisher.publish(_as_event(decode_event(line)))
        except InvalidEvent as invalid:
            rejected += 1
            _say(f"line {number}: rejected, {invalid.summary()}")
        else:
            sent += 1
    return sent, rejected


def _as_event(decoded: Any) -> dict[str, Any]:
    if not isinstance(decoded, dict):
        raise InvalidEvent("not_object", {"_event": ["The line must be a JSON object."]})
    return decoded


def cmd_publish(args: argparse.Namespace) -> int:
    with _open_input(args.file) as source, _publisher(args) as publisher:
        sent, rejected = _publish_lines(publisher, source)
    _say(f"published {sent} event(s) to {args.topic}, rejected {rejected}")
    return EXIT_REJECTED if rejected else 0


def cmd_demo(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else time.time_ns()
    started = time.monotonic()
    sent = 0
    with _publisher(args) as publisher:
        for sent, event in enumerate(generate_events(args.count, seed=seed, days=args.days), 1):
            publisher.publish(event)
            if args.rate > 0:  # pace to the requested rate, without drift
                time.sleep(max(0.0, started + sent / args.rate - time.monotonic()))
    _say(f"published {sent} demo event(s) to {args.topic} (seed {seed})")
    return 0


# --------------------------------------------------------------------------- dlq


def _connection(args: argparse.Namespace) -> Connection:
    kafka = args.settings.kafka
    servers = args.bootstrap_servers or kafka.bootstrap_servers
    return Connection(servers, timeout_s=args.connect_timeout, security=kafka.security_config())


def _selection(args: argparse.Namespace) -> Selection:
    """Raises ValueError for contradictory options (an argument error)."""
    return Selection(
        reasons=frozenset(args.reason or ()),
        original_topics=frozenset(args.original_topic or ()),
        since=args.since,
        until=args.until,
        partition=args.partition,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
    )


def _dlq_arguments(args: argparse.Namespace) -> None:
    """Checks across options that argparse cannot express; raises ValueError."""
    if args.dlq_command == "show":
        return
    args.selection = _selection(args)
    if args.dlq_command != "replay":
        return
    if args.selection.is_everything and not (args.all or args.file):
        raise ValueError(
            "say which letters: --reason, --original-topic, --since/--until, --partition, "
            "--from-offset/--to-offset, or --all for every letter"
        )
    if args.to_topic and args.to_topic == args.dlq_topic:
        raise ValueError("--to-topic is the dead-letter topic itself")


def cmd_dlq_list(args: argparse.Namespace) -> int:
    with opened_dlq(_connection(args), args.dlq_topic) as dlq:
        groups = group_letters(dlq.selected(args.selection))
        spans, where = dlq.spans, dlq.describe()
    total = sum(group.count for group in groups)
    if args.json:
        document = {
            "dlq_topic": args.dlq_topic,
            "partitions": [vars(span) for span in spans],
            "letters": total,
            "groups": [group.as_json() for group in groups],
        }
        print(json.dumps(document, indent=2))
        return 0
    print(f"{where}: {total} letter(s) selected")
    if groups:
        print("\n".join(format_groups(groups)))
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    connection = _connection(args)
    with opened_dlq(connection, args.dlq_topic) as dlq:
        try:
            letter = dlq.letter_at(args.partition, args.offset)
        except NoRecord as missing:
            _say(str(missing))
            return EXIT_REJECTED
    if not args.raw:
        print("\n".join(describe_letter(letter, args.dlq_topic, args.max_bytes)))
        return 0
    originals = OriginalRecords(lambda: TopicReader(connection))
    try:
        sys.stdout.buffer.write(originals.value_of(letter) or b"")
    except Skip as skip:
        _say(f"{letter.describe()}: {skip}")
        return EXIT_REJECTED
    finally:
        originals.close()
    return 0


def cmd_dlq_replay(args: argparse.Namespace) -> int:
    try:
        corrections = _corrections(args.file)
    except CorrectionsError as bad:
        for problem in bad.problems:
            _say(problem)
        return EXIT_USAGE
    fix_up = FixUp(args.fix_up, args.fix_up_timeout) if args.fix_up else None
    plan = ReplayPlan(args.selection, args.to_topic, fix_up, corrections)
    progress = Progress(args.progress_every, args.progress_seconds)
    out: Callable[[str], None] | None = _print_line if args.dry_run else None
    result = run_replay(_connection(args), args.dlq_topic, plan, progress, _say, out)
    return _report_replay(args, result, corrections.unused() if corrections else [])


def _report_replay(args: argparse.Namespace, result: ReplayResult, unused: list[str]) -> int:
    """The closing lines on stderr, and the exit code."""
    for line in [*unused, *(f"delivery failed: {failure}" for failure in result.failures)]:
        _say(line)
    counts = result.counts
    target = args.to_topic or "their original topics"
    if args.dry_run:
        _say(f"dry run, to {target}: {counts.summary('would be sent')}; nothing was sent")
    else:
        _say(f"replay from {result.dlq} to {target}: {counts.summary()}")
    if counts.still_invalid:
        _say(
            f"{counts.still_invalid} of them are still invalid by the current rules: the "
            "worker will dead-letter them again (never lost)"
        )
    if result.failures:
        return EXIT_KAFKA
    return EXIT_REJECTED if counts.skipped or unused else 0


def _corrections(name: str | None) -> Corrections | None:
    if name is None:
        return None
    with _open_input(name) as source:
        return Corrections.from_lines(name, source)


def _print_line(line: str) -> None:
    print(line, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        settings = CliSettings.from_env()
    except ConfigError as error:
        _say(f"configuration error: {error}")
        return EXIT_USAGE
    parser = _parser(settings)
    args = parser.parse_args(argv)
    if args.command == "dlq":
        try:
            _dlq_arguments(args)
        except ValueError as error:
            where = f"audit-log dlq {args.dlq_command}"
            parser.exit(EXIT_USAGE, f"{where}: {error} (see {where} --help)\n")
    try:
        return int(args.run(args))
    except (BrokerUnavailable, DeliveryError, DlqError, StoreError, ConfigError) as error:
        _say(str(error))
        return EXIT_KAFKA
    except OSError as error:  # the input file
        _say(f"cannot read {error.filename or 'the input'}: {error.strerror or error}")
        return EXIT_KAFKA
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
