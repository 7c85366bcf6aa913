"""Tamper evidence: leaf hashes of stored logs, Merkle trees, signed and chained digests.

Pure code (no I/O) shared by the worker that signs digests, the API that serves them and
`audit-log verify` that checks them (docs/integrity.md has the design and threat model).

* A log's **leaf** is the SHA-256 of its stored document (``_source``, which excludes the
  derived search representation) in canonical JSON: keys sorted, no white space, UTF-8.
* A **digest** commits to the leaves of logs of *one* partner (a partner's proof reveals
  nothing of another's) through a Merkle tree as RFC 9162 §2.1 builds it (leaf hashes are
  prefixed 0x00, inner nodes 0x01, the split at the largest power of two below n). Digests
  of a partner form a chain: each names its sequence number and the hash of its
  predecessor's signed header, and the header is signed with Ed25519.
* A log may appear in several digests (a redelivered or replayed event is covered again),
  always with the same leaf; a different leaf for one log is itself a finding.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

DIGEST_VERSION = 1
ALGORITHM = "Ed25519"
#: The predecessor of a partner's first digest.
GENESIS = "0" * 64
#: Fields of a digest's header, the part that is signed (the entries are committed to by
#: the Merkle root).
HEADER_FIELDS = (
    "v",
    "partner_id",
    "seq",
    "prev",
    "created_at",
    "count",
    "root",
    "key_id",
    "first_ingested",
    "last_ingested",
    "first_timestamp",
    "last_timestamp",
)


class KeyError_(ValueError):
    """A signing or public key that cannot be used; the message says which and why."""


# --------------------------------------------------------------------------- hashing


def canonical(value: Any) -> bytes:
    """Canonical JSON bytes: sorted keys, no white space, UTF-8 (what every hash is over)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_source(document: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a built document Elasticsearch keeps in ``_source`` (the index template
    excludes the derived search representation)."""
    source = dict(document)
    audit = source.get("audit")
    if isinstance(audit, dict) and "search" in audit:
        source["audit"] = {key: value for key, value in audit.items() if key != "search"}
    return source


def leaf_hash(source: Mapping[str, Any]) -> str:
    """RFC 9162 leaf hash (0x00 prefix) of a stored document's canonical JSON, hex."""
    return canonical_leaf_hash(canonical(source))


def canonical_leaf_hash(canonical_source: bytes) -> str:
    """`leaf_hash` of a stored document given as its canonical JSON already (the worker
    serializes each document that way once, and hashes those bytes)."""
    return sha256_hex(b"\x00" + canonical_source)


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def merkle_root(leaves: Sequence[str]) -> str:
    """RFC 9162 Merkle tree hash over leaf hashes (hex), hex; the empty tree's is SHA-256("")."""
    if not leaves:
        return sha256_hex(b"")
    return _root([bytes.fromhex(leaf) for leaf in leaves]).hex()


def _root(nodes: Sequence[bytes]) -> bytes:
    if len(nodes) == 1:
        return nodes[0]
    k = _split(len(nodes))
    return _node(_root(nodes[:k]), _root(nodes[k:]))


def inclusion_proof(leaves: Sequence[str], index: int) -> list[str]:
    """RFC 9162 §2.1.3 audit path of leaf `index` (hex hashes, bottom-up)."""
    if not 0 <= index < len(leaves):
        raise IndexError(index)
    return [node.hex() for node in _path([bytes.fromhex(leaf) for leaf in leaves], index)]


def _path(nodes: Sequence[bytes], index: int) -> list[bytes]:
    if len(nodes) == 1:
        return []
    k = _split(len(nodes))
    if index < k:
        return [*_path(nodes[:k], index), _root(nodes[k:])]
    return [*_path(nodes[k:], index - k), _root(nodes[:k])]


def root_from_proof(leaf: str, index: int, size: int, proof: Sequence[str]) -> str | None:
    """RFC 9162 §2.1.3.2: the root an inclusion proof leads to, or None if it is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn = index, size - 1
    node = bytes.fromhex(leaf)
    for sibling_hex in proof:
        if sn == 0:
            return None
        sibling = bytes.fromhex(sibling_hex)
        if fn % 2 == 1 or fn == sn:
            node = _node(sibling, node)
            if fn % 2 == 0:
                while fn % 2 == 0 and fn != 0:
                    fn, sn = fn >> 1, sn >> 1
        else:
            node = _node(node, sibling)
        fn, sn = fn >> 1, sn >> 1
    return node.hex() if sn == 0 else None


# --------------------------------------------------------------------------- keys


def load_private_key(pem_or_path: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM text (PKCS#8) or a path to a PEM file."""
    key = serialization.load_pem_private_key(_pem_bytes(pem_or_path, "private"), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"the signing key is a {type(key).__name__}, not an Ed25519 key")
    return key


def load_public_key(pem_or_path: str) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(_pem_bytes(pem_or_path, "public"))
    if not isinstance(key, Ed25519PublicKey):
        raise KeyError_(f"the public key is a {type(key).__name__}, not an Ed25519 key")
    return key


def _pem_bytes(pem_or_path: str, kind: str) -> bytes:
    text = pem_or_path.strip()
    if "-----BEGIN" not in text:
        try:
            with open(text, "rb") as handle:
                return handle.read()
        except OSError as error:
            raise KeyError_(f"cannot read the {kind} key file {text!r}: {error.strerror}") from None
    return text.encode()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def private_pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def key_id(key: Ed25519PublicKey) -> str:
    """A short name for a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_hex(raw)[:16]


# --------------------------------------------------------------------------- digests


@dataclass(frozen=True)
class Entry:
    """One covered log: its Log ID, its leaf hash and its event time (`@timestamp`), so a
    verifier can tell which digests speak for a time range."""

    log_id: str
    leaf: str
    timestamp: str


@dataclass(frozen=True)
class Digest:
    """A signed, chained statement: these logs of this partner had these leaves."""

    header: dict[str, Any]
    signature: str
    entries: tuple[Entry, ...] = field(default_factory=tuple)

    @property
    def partner_id(self) -> str:
        return str(self.header["partner_id"])

    @property
    def seq(self) -> int:
        return int(self.header["seq"])

    @property
    def hash(self) -> str:
        """What the next digest names as `prev`."""
        return header_hash(self.header)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header,
            "signature": self.signature,
            "entries": [{"id": e.log_id, "leaf": e.leaf, "ts": e.timestamp} for e in self.entries],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Digest:
        header = {name: data[name] for name in HEADER_FIELDS}
        entries = tuple(
            Entry(str(e["id"]), str(e["leaf"]), str(e["ts"])) for e in data.get("entries") or []
        )
        return cls(header, str(data["signature"]), entries)


def digest_doc_id(partner_id: str, seq: int) -> str:
    """The store's id of a partner's `seq`-th digest: deterministic, so two writers of one
    sequence number collide (and one of them moves on) instead of forking the chain."""
    return f"{sha256_hex(partner_id.encode())[:24]}-{seq:012d}"


def header_hash(header: Mapping[str, Any]) -> str:
    return sha256_hex(canonical({name: header[name] for name in HEADER_FIELDS}))


def entry_of(source: Mapping[str, Any], leaf: str | None = None) -> Entry:
    """The digest entry of a stored document (its `_source`); `leaf`: its leaf hash, when
    already known."""
    leaf = leaf_hash(source) if leaf is None else leaf
    return Entry(str(source["event"]["id"]), leaf, str(source["@timestamp"]))


def sign_digest(
    key: Ed25519PrivateKey,
    partner_id: str,
    seq: int,
    prev: str,
    created_at: str,
    entries: Sequence[Entry],
    bounds: Mapping[str, str | None],
) -> Digest:
    """The digest of `entries` (in order) as the `seq`-th of `partner_id`'s chain."""
    header = {
        "v": DIGEST_VERSION,
        "partner_id": partner_id,
        "seq": seq,
        "prev": prev,
        "created_at": created_at,
        "count": len(entries),
        "root": merkle_root([entry.leaf for entry in entries]),
        "key_id": key_id(key.public_key()),
        "first_ingested": bounds.get("first_ingested"),
        "last_ingested": bounds.get("last_ingested"),
        "first_timestamp": bounds.get("first_timestamp"),
        "last_timestamp": bounds.get("last_timestamp"),
    }
    signature = key.sign(canonical(header))
    return Digest(header, base64.b64encode(signature).decode(), tuple(entries))


def signature_valid(digest: Digest, key: Ed25519PublicKey) -> bool:
    try:
        key.verify(base64.b64decode(digest.signature), canonical(digest.header))
    except (InvalidSignature, ValueError):
        return False
    return True


def time_bounds(sources: Iterable[Mapping[str, Any]]) -> dict[str, str | None]:
    """The earliest and latest ingest time and event time of the covered logs (ISO strings
    of one format, so they compare as text), so a verifier can find digests by time."""
    ingested, stamps = [], []
    for source in sources:
        ingested.append(str((source.get("event") or {}).get("ingested") or ""))
        stamps.append(str(source.get("@timestamp") or ""))
    return {**span(ingested, "ingested"), **span(stamps, "timestamp")}


def span(values: Iterable[str], name: str) -> dict[str, str | None]:
    """``first_<name>`` and ``last_<name>``: the smallest and largest of ISO time strings."""
    present = sorted(value for value in values if value)
    return {
        f"first_{name}": present[0] if present else None,
        f"last_{name}": present[-1] if present else None,
    }
