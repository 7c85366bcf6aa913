"""``audit-log verify``: prove a partner's audit log was not changed, deleted from or added to.

    audit-log verify --partner p-100 --from 2026-11-01 --to 2026-12-01
    audit-log verify --export audit-logs.ndjson          # offline, public key only

The trusted public key comes from ``--public-key`` (PEM text or file, repeatable for
rotated keys) or ``AUDIT_SIGNING_PUBLIC_KEY``; never from the store being checked.
Exit codes: 0 everything verifies; 1 findings (each on its own line); 2 bad arguments, an
unusable key, or the store unreachable.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.dlq_letters import parse_time
from schemas.document import iso_ms
from schemas.integrity import KeyError_, key_id, load_public_key, private_pem, public_pem
from schemas.integrity_store import StoreReader
from schemas.integrity_verify import Findings, verify_export, verify_store

EXIT_FINDINGS = 1
EXIT_ERROR = 2
#: Logs ingested more recently than this may not be in a digest yet (flush interval,
#: retries); they are not called inserted.
DEFAULT_LAG = "5m"
BEGINNING = "0001-01-01T00:00:00.000Z"


def add_verify(commands: Any, parents: list[argparse.ArgumentParser], index_prefix: str) -> None:
    verify = commands.add_parser(
        "verify",
        parents=parents,
        help="check a partner's logs against its signed digests (store or export file)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = verify.add_mutually_exclusive_group(required=True)
    mode.add_argument("--partner", help="check this partner's logs in the store")
    mode.add_argument("--export", metavar="FILE", help="check an NDJSON export (offline)")
    verify.add_argument("--from", dest="start", help="event time from (default: the start)")
    verify.add_argument("--to", dest="end", help="event time to (default: now)")
    verify.add_argument(
        "--lag", default=DEFAULT_LAG, help="digest lag, an age like 5m (default: %(default)s)"
    )
    verify.add_argument(
        "--public-key",
        action="append",
        default=[],
        metavar="PEM_OR_FILE",
        help="trusted Ed25519 public key; default: $AUDIT_SIGNING_PUBLIC_KEY",
    )
    verify.add_argument(
        "--index-prefix", default=index_prefix, help="default: $AUDIT_INDEX_PREFIX or %(default)s"
    )
    verify.set_defaults(run=cmd_verify)


def add_keygen(commands: Any) -> None:
    keygen = commands.add_parser(
        "keygen",
        help="make the Ed25519 key pair the worker signs digests with",
        description="Writes the private key (mode 0600, for the worker's AUDIT_SIGNING_KEY) "
        "to FILE and the public key (for the API's AUDIT_SIGNING_PUBLIC_KEY and for "
        "partners) beside it as FILE with .pub.pem; never overwrites a file.",
    )
    keygen.add_argument("--out", required=True, metavar="FILE", help="e.g. signing-key.pem")
    keygen.set_defaults(run=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = Path(args.out)
    public = private.with_name(private.name.removesuffix(".pem") + ".pub.pem")
    key = Ed25519PrivateKey.generate()
    try:
        descriptor = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(private_pem(key))
        with public.open("x") as handle:
            handle.write(public_pem(key.public_key()))
    except FileExistsError as error:
        _say(f"{error.filename} exists: not overwritten (a key in use must not be lost)")
        return EXIT_ERROR
    _say(f"wrote {private} (private, 0600) and {public}; key id {key_id(key.public_key())}")
    return 0


def trusted_keys(given: list[str], configured: str | None) -> dict[str, Ed25519PublicKey]:
    """The --public-key keys, else the configured one(s) (AUDIT_SIGNING_PUBLIC_KEY)."""
    sources = given or [configured or ""]
    sources = [source for source in sources if source.strip()]
    if not sources:
        raise KeyError_("no public key: give --public-key or set AUDIT_SIGNING_PUBLIC_KEY")
    keys = [load_public_key(source) for source in sources]
    return {key_id(key): key for key in keys}


def cmd_verify(args: argparse.Namespace) -> int:
    try:
        keys = trusted_keys(args.public_key, args.settings.signing_public_key)
        now = datetime.now(UTC)
        pending_after = iso_ms(parse_time(args.lag, now))  # an age: "5m" is now - 5 minutes
        window = (_bound(args.start, BEGINNING, now), _bound(args.end, iso_ms(now), now))
    except (KeyError_, ValueError) as error:
        _say(str(error))
        return EXIT_ERROR
    if args.export:
        with open(args.export, "rb") as lines:
            findings = verify_export(lines, keys, pending_after)
        subject = args.export
    else:
        reader = StoreReader(args.settings.elasticsearch, args.index_prefix)
        findings = verify_store(
            reader.digests(args.partner),
            keys,
            reader.logs(args.partner, window),
            window,
            pending_after,
            reader.expiries(args.partner),
        )
        subject = f"partner {args.partner} from {window[0]} to {window[1]}"
    return _report(subject, findings)


def _report(subject: str, findings: Findings) -> int:
    for line in findings.lines():
        print(line)
    counts = f"{findings.checked_logs} logs, {findings.checked_digests} digests"
    if findings.expired:  # deleted by retention, as its signed audit_log.expire logs say
        counts += f"; {len(findings.expired)} expired under retention"
    if findings.clean:
        _say(f"verified {subject}: {counts}, nothing changed, deleted or inserted")
        return 0
    _say(f"NOT verified {subject}: {len(findings.lines())} finding(s) over {counts}")
    return EXIT_FINDINGS


def _bound(text: str | None, default: str, now: datetime) -> str:
    return iso_ms(parse_time(text, now)) if text else default


def _say(message: str) -> None:
    print(f"audit-log: {message}", file=sys.stderr)
