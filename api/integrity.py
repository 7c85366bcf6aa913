"""The read API's side of tamper evidence: which signed digest covers a log, with a proof.

The worker signs (consumer/digests.py), `audit-log verify` checks (schemas/integrity_verify);
here a caller learns, for a log it may see, whether a digest covers it as stored, and
receives the Merkle inclusion proof (never the digest's other entries, which may name logs
outside the caller's organizations). Owners and super admins may read whole digests.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from api.auth import Caller
from api.scope import digest_filter
from api.store import Store
from schemas.integrity import (
    Digest,
    inclusion_proof,
    key_id,
    leaf_hash,
    load_public_key,
    signature_valid,
)
from schemas.integrity_verify import export_line_integrity

MAX_DIGESTS_PAGE = 100
#: Log IDs per digest lookup of an export (one search per this many logs).
EXPORT_LOOKUP = 500


class IntegrityUnavailable(Exception):
    """No public key is configured: nothing can be said about integrity (a 503)."""


@dataclass(frozen=True)
class TrustedKeys:
    """The public keys digests are checked with, by key id (built once per app)."""

    by_id: Mapping[str, Ed25519PublicKey]

    @classmethod
    def from_pems(cls, pems: Iterable[str]) -> TrustedKeys:
        keys = [load_public_key(pem) for pem in pems]
        return cls({key_id(key): key for key in keys})

    def require(self) -> TrustedKeys:
        if not self.by_id:
            raise IntegrityUnavailable("AUDIT_SIGNING_PUBLIC_KEY is not configured")
        return self


def covering_query(caller: Caller, log_ids: Sequence[str]) -> dict[str, Any]:
    """The caller's partner's digests that name any of `log_ids`, oldest first."""
    return {
        "query": {
            "bool": {"filter": [*digest_filter(caller), {"terms": {"entry_ids": list(log_ids)}}]}
        },
        "sort": [{"seq": "asc"}],
        "size": min(max(len(log_ids), 1) * 4, 10_000),
    }


def chain_query(caller: Caller, after_seq: int, limit: int) -> dict[str, Any]:
    """One page of the caller's partner's digests, by sequence number."""
    return {
        "query": {
            "bool": {"filter": [*digest_filter(caller), {"range": {"seq": {"gt": after_seq}}}]}
        },
        "sort": [{"seq": "asc"}],
        "size": min(limit, MAX_DIGESTS_PAGE),
        "_source": {"excludes": ["entry_ids"]},
    }


def proof_for(
    source: Mapping[str, Any], digests: Iterable[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The first digest whose entry for this log has the stored document's leaf, with the
    inclusion proof; None when no digest covers the log as it is stored."""
    log_id, leaf = str(source["event"]["id"]), leaf_hash(source)
    for data in digests:
        digest = Digest.from_json(data)
        leaves = [entry.leaf for entry in digest.entries]
        for index, entry in enumerate(digest.entries):
            if entry.log_id == log_id and entry.leaf == leaf:
                return {"digest": digest, "index": index, "proof": inclusion_proof(leaves, index)}
    return None


def log_integrity(
    store: Store, keys: TrustedKeys, caller: Caller, source: Mapping[str, Any]
) -> dict[str, Any]:
    """What the API says of one log (already known to be visible to `caller`)."""
    log_id = str(source["event"]["id"])
    digests = store.digests(covering_query(caller, [log_id]))
    found = proof_for(source, digests)
    if found is None:
        status = "changed" if digests else "not_covered"
        return {"log_id": log_id, "status": status, "verified": False, "leaf": leaf_hash(source)}
    digest: Digest = found["digest"]
    key = keys.by_id.get(str(digest.header["key_id"]))
    verified = key is not None and signature_valid(digest, key)
    return {
        "log_id": log_id,
        "status": "verified" if verified else "bad_signature",
        "verified": verified,
        "leaf": leaf_hash(source),
        "digest": {**digest.header, "signature": digest.signature},
        "index": found["index"],
        "proof": found["proof"],
    }


def digest_page(store: Store, caller: Caller, after_seq: int, limit: int) -> dict[str, Any]:
    items = store.digests(chain_query(caller, after_seq, limit))
    full = len(items) == min(limit, MAX_DIGESTS_PAGE)
    return {"items": items, "next_after_seq": items[-1]["seq"] if items and full else None}


def with_proofs(
    store: Store, caller: Caller, documents: Iterable[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(document, its export `integrity` object) for each document, a lookup per page."""
    page: list[dict[str, Any]] = []
    for document in documents:
        page.append(document)
        if len(page) == EXPORT_LOOKUP:
            yield from _page_proofs(store, caller, page)
            page = []
    if page:
        yield from _page_proofs(store, caller, page)


def _page_proofs(
    store: Store, caller: Caller, page: list[dict[str, Any]]
) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    digests = store.digests(covering_query(caller, [d["event"]["id"] for d in page]))
    for document in page:
        found = proof_for(document, digests)
        if found is None:
            yield document, export_line_integrity(document, None, 0, [])
        else:
            yield (
                document,
                export_line_integrity(document, found["digest"], found["index"], found["proof"]),
            )
