"""``audit-log``: publish audit events from a file, or a demo stream, to Kafka.

    audit-log publish events.jsonl        # one JSON event per line ("-" reads stdin)
    audit-log demo --rate 50 --count 1000

Exit codes: 0 all sent; 1 some lines rejected (each named on stderr with its line number
and fields; the other lines are still sent); 2 Kafka unreachable or deliveries failed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

from schemas.demo import generate_events
from schemas.event import InvalidEvent, decode_event
from schemas.kafka_config import bootstrap_servers_from_env, kafka_config_from_env
from schemas.publisher import DEFAULT_TOPIC, AuditPublisher, BrokerUnavailable, DeliveryError

EXIT_REJECTED = 1
EXIT_KAFKA = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="audit-log", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--topic", default=DEFAULT_TOPIC, help="default: %(default)s")
    common.add_argument(
        "--bootstrap-servers",
        default=None,
        help="default: $KAFKA_BOOTSTRAP_SERVERS or 127.0.0.1:9092",
    )
    common.add_argument(
        "--connect-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for Kafka before giving up (default: 10)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    publish = commands.add_parser(
        "publish", parents=[common], help="publish JSON-lines events from FILE or - (stdin)"
    )
    publish.add_argument("file", metavar="FILE")
    demo = commands.add_parser("demo", parents=[common], help="publish a realistic demo stream")
    demo.add_argument("--rate", type=float, default=50.0, help="events per second; 0 = no limit")
    demo.add_argument("--count", type=int, default=1000)
    demo.add_argument("--seed", type=int, default=None, help="default: random")
    demo.add_argument("--days", type=float, default=30.0, help="time span of the events")
    return parser


def _say(message: str) -> None:
    print(f"audit-log: {message}", file=sys.stderr)


@contextmanager
def _publisher(args: argparse.Namespace) -> Iterator[AuditPublisher]:
    """A connected publisher; librdkafka's own log lines are silenced (we report instead)."""
    quiet = logging.getLogger("schemas.cli.kafka")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    servers = args.bootstrap_servers or bootstrap_servers_from_env()
    publisher = AuditPublisher(servers, topic=args.topic, logger=quiet, **kafka_config_from_env())
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


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    command = cmd_publish if args.command == "publish" else cmd_demo
    try:
        return command(args)
    except (BrokerUnavailable, DeliveryError) as error:
        _say(str(error))
        return EXIT_KAFKA
    except OSError as error:  # the input file
        _say(f"cannot read {args.file}: {error.strerror or error}")
        return EXIT_KAFKA
    except KeyboardInterrupt:
        _say("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
