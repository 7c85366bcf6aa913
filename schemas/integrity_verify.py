"""What `audit-log verify` concludes: pure checks of digests against stored or exported logs.

Two modes, both without trusting the store or the API for anything but data:

* **store**: a partner's whole digest chain and its logs in a time range, as read from
  Elasticsearch. Finds logs changed (leaf mismatch), deleted (in a digest, not stored),
  inserted (stored, in no digest, older than the digest lag), and digests missing (a gap in
  the sequence or a broken `prev` link), re-signed or altered (signature, key or root).
* **export**: an NDJSON export made with ``integrity=true``, offline with the public key
  only: each line's document hashes to a leaf that its inclusion proof leads to a root
  signed by the key, and the line's visible fields are what that document shows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from schemas.document import NAMESPACE, document_to_log_detail
from schemas.integrity import (
    GENESIS,
    Digest,
    leaf_hash,
    merkle_root,
    root_from_proof,
    signature_valid,
)

#: The key an export line carries its integrity proof under.
EXPORT_INTEGRITY_KEY = "integrity"


@dataclass
class Findings:
    """Everything that does not hold; empty means verified."""

    changed: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    #: Log IDs covered by two digests with different leaves.
    conflicting: list[str] = field(default_factory=list)
    #: Log IDs gone because retention deleted their month, as the partner's own signed
    #: `audit_log.expire` logs say: not findings (see `expired_spans`).
    expired: list[str] = field(default_factory=list)
    #: Sequence numbers absent from the chain.
    missing_digests: list[int] = field(default_factory=list)
    #: Digests whose signature does not verify with the trusted key (re-signed or altered).
    bad_signatures: list[int] = field(default_factory=list)
    #: Digests whose `prev` does not name the digest before them.
    broken_links: list[int] = field(default_factory=list)
    #: Digests whose entries do not hash to their signed root.
    altered_entries: list[int] = field(default_factory=list)
    checked_logs: int = 0
    checked_digests: int = 0

    @property
    def clean(self) -> bool:
        return not any(
            (
                self.changed,
                self.deleted,
                self.inserted,
                self.conflicting,
                self.missing_digests,
                self.bad_signatures,
                self.broken_links,
                self.altered_entries,
            )
        )

    def lines(self) -> list[str]:
        """One readable line per finding (what the CLI prints)."""
        out = []
        for label, items in (
            ("changed", self.changed),
            ("deleted", self.deleted),
            ("inserted", self.inserted),
            ("conflicting leaves", self.conflicting),
        ):
            out += [f"{label}: log {item}" for item in sorted(items)]
        for label, seqs in (
            ("missing digest", self.missing_digests),
            ("digest signature does not verify (re-signed or altered)", self.bad_signatures),
            ("digest does not name its predecessor", self.broken_links),
            ("digest entries do not match their signed root", self.altered_entries),
        ):
            out += [f"{label}: #{seq}" for seq in sorted(seqs)]
        return out


def verify_chain(
    digests: Iterable[Digest], keys: Mapping[str, Ed25519PublicKey], findings: Findings
) -> list[Digest]:
    """Check a partner's chain; returns the digests whose signature and root hold."""
    by_seq: dict[int, Digest] = {}
    for digest in digests:
        by_seq.setdefault(digest.seq, digest)
    trusted: list[Digest] = []
    previous = GENESIS
    for seq in range(1, max(by_seq, default=0) + 1):
        found = by_seq.get(seq)
        if found is None:
            findings.missing_digests.append(seq)
            previous = ""  # the next link cannot be checked against a missing digest
            continue
        digest = found
        findings.checked_digests += 1
        key = keys.get(str(digest.header.get("key_id")))
        if key is None or not signature_valid(digest, key):
            findings.bad_signatures.append(seq)
        elif merkle_root([e.leaf for e in digest.entries]) != digest.header["root"]:
            findings.altered_entries.append(seq)
        else:
            trusted.append(digest)
        if previous and digest.header["prev"] != previous:
            findings.broken_links.append(seq)
        previous = digest.hash
    return trusted


def expected_leaves(
    digests: Iterable[Digest], window: tuple[str, str], findings: Findings
) -> dict[str, str]:
    """Log ID -> leaf, for the entries whose event time falls in `window` (ISO strings)."""
    expected: dict[str, str] = {}
    start, end = window
    for digest in digests:
        for entry in digest.entries:
            if not start <= entry.timestamp <= end:
                continue
            known = expected.setdefault(entry.log_id, entry.leaf)
            if known != entry.leaf and entry.log_id not in findings.conflicting:
                findings.conflicting.append(entry.log_id)
    return expected


def expired_spans(
    digests: Iterable[Digest], expiries: Mapping[str, Mapping[str, Any]]
) -> list[tuple[str, str]]:
    """The event-time spans [from, to) whose logs retention deleted, from the partner's
    `audit_log.expire` logs (`expiries`: Log ID -> `_source`). Only such a log that a valid
    digest signed, as stored, counts: a record written into the store behind the worker's
    back excuses nothing. A span never reaches past the cutoff the retention applied."""
    signed = {(entry.log_id, entry.leaf) for digest in digests for entry in digest.entries}
    spans = []
    for log_id, source in expiries.items():
        if (log_id, leaf_hash(source)) not in signed:
            continue
        meta = (source.get(NAMESPACE) or {}).get("metadata") or {}
        start, end, cutoff = (str(meta.get(key) or "") for key in ("from", "to", "cutoff"))
        if start and end and cutoff:
            spans.append((start, min(end, cutoff)))
    return spans


def verify_store(
    digests: Sequence[Digest],
    keys: Mapping[str, Ed25519PublicKey],
    stored: Mapping[str, Mapping[str, Any]],
    window: tuple[str, str],
    pending_after: str,
    expiries: Mapping[str, Mapping[str, Any]] | None = None,
) -> Findings:
    """Store mode. `stored`: Log ID -> `_source` of every log of the partner whose event time
    falls in `window`; `pending_after`: logs ingested after this time may not be covered
    yet (the digest lag) and are not called inserted; `expiries`: the partner's
    `audit_log.expire` logs, whatever their time (a log they account for is expired, not
    deleted)."""
    findings = Findings()
    trusted = verify_chain(digests, keys, findings)
    expected = expected_leaves(trusted, window, findings)
    spans = expired_spans(trusted, expiries or {})
    times = {entry.log_id: entry.timestamp for digest in trusted for entry in digest.entries}
    for log_id, source in stored.items():
        findings.checked_logs += 1
        leaf = expected.get(log_id)
        if leaf is None:
            ingested = str((source.get("event") or {}).get("ingested") or "")
            if ingested <= pending_after:
                findings.inserted.append(log_id)
        elif leaf_hash(source) != leaf:
            findings.changed.append(log_id)
    for log_id in (log_id for log_id in expected if log_id not in stored):
        gone = any(start <= times[log_id] < end for start, end in spans)
        (findings.expired if gone else findings.deleted).append(log_id)
    return findings


def export_line_integrity(
    source: Mapping[str, Any], digest: Digest | None, index: int, proof: Sequence[str]
) -> dict[str, Any]:
    """What an export line made with ``integrity=true`` carries beside the log."""
    if digest is None:
        return {"document": source, "digest": None}
    return {
        "document": source,
        "digest": {**digest.header, "signature": digest.signature},
        "index": index,
        "proof": list(proof),
    }


def verify_export(
    lines: Iterable[bytes], keys: Mapping[str, Ed25519PublicKey], pending_after: str
) -> Findings:
    """Export mode (offline): each line's proof, signature and visible fields."""
    findings = Findings()
    for raw in lines:
        if not raw.strip():
            continue
        line = orjson.loads(raw)
        if "error" in line and "id" not in line:
            findings.changed.append("(the export ends with an error line: it is incomplete)")
            continue
        findings.checked_logs += 1
        proof = line.pop(EXPORT_INTEGRITY_KEY, None)
        verdict = _export_verdict(line, proof, keys, pending_after)
        if verdict == "changed":
            findings.changed.append(str(line.get("id")))
        elif verdict == "inserted":
            findings.inserted.append(str(line.get("id")))
        elif verdict == "bad_signature":
            findings.bad_signatures.append(int(proof["digest"]["seq"]))
    return findings


def _export_verdict(
    line: dict[str, Any], proof: Any, keys: Mapping[str, Ed25519PublicKey], pending_after: str
) -> str | None:
    """None when the line holds; else what is wrong with it."""
    if not isinstance(proof, dict) or not isinstance(proof.get("document"), dict):
        return "changed"  # no document to check the line against
    document = proof["document"]
    if document_to_log_detail(document) != line:
        return "changed"
    header = proof.get("digest")
    if header is None:
        ingested = str(document.get("event", {}).get("ingested") or "")
        return "inserted" if ingested <= pending_after else None
    digest = Digest.from_json({**header, "entries": []})
    key = keys.get(str(header.get("key_id")))
    if key is None or not signature_valid(digest, key):
        return "bad_signature"
    root = root_from_proof(leaf_hash(document), proof["index"], header["count"], proof["proof"])
    return None if root == header["root"] else "changed"
