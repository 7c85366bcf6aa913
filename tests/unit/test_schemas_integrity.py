"""Leaves, Merkle trees (RFC 6962/9162 vectors), signed chained digests and what verify
concludes from them (no network)."""

from __future__ import annotations

import copy
import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from schemas.document import build_document, document_to_log_detail
from schemas.event import validate_event
from schemas.integrity import (
    GENESIS,
    Digest,
    Entry,
    entry_of,
    inclusion_proof,
    key_id,
    leaf_hash,
    load_private_key,
    load_public_key,
    merkle_root,
    private_pem,
    public_pem,
    root_from_proof,
    sign_digest,
    signature_valid,
    stored_source,
    time_bounds,
)
from schemas.integrity_verify import export_line_integrity, verify_export, verify_store
from tests.support.events import make_event

# RFC 6962's test leaves and the roots of their first n (certificate-transparency's vectors).
VECTOR_INPUTS = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
]
VECTOR_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
KEY = Ed25519PrivateKey.generate()
KEYS = {key_id(KEY.public_key()): KEY.public_key()}
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
WINDOW = ("2026-11-01T00:00:00.000Z", "2026-12-31T00:00:00.000Z")
LONG_AGO = "2026-12-31T00:00:00.000Z"  # every log here is past the digest lag


def vector_leaves() -> list[str]:
    return [hashlib.sha256(b"\x00" + bytes.fromhex(i)).hexdigest() for i in VECTOR_INPUTS]


@pytest.mark.parametrize("size", range(1, 9))
def test_merkle_roots_match_the_rfc_6962_vectors(size: int) -> None:
    assert merkle_root(vector_leaves()[:size]) == VECTOR_ROOTS[size - 1]


def test_the_empty_tree_is_the_hash_of_nothing() -> None:
    assert merkle_root([]) == hashlib.sha256(b"").hexdigest()


@given(st.integers(min_value=1, max_value=70), st.data())
def test_every_inclusion_proof_leads_to_the_root(size: int, data: st.DataObject) -> None:
    leaves = [hashlib.sha256(str(n).encode()).hexdigest() for n in range(size)]
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    proof = inclusion_proof(leaves, index)
    assert root_from_proof(leaves[index], index, size, proof) == merkle_root(leaves)
    other = hashlib.sha256(b"forged").hexdigest()
    assert root_from_proof(other, index, size, proof) != merkle_root(leaves)
    if size > 1:  # the proof of one position does not prove another
        assert root_from_proof(leaves[index], (index + 1) % size, size, proof) != merkle_root(
            leaves
        )


def source(n: int, partner: str = "p-1", **overrides: Any) -> dict[str, Any]:
    event = make_event(
        event_id=f"e-{n}",
        partner_id=partner,
        occurred_at=NOW - timedelta(minutes=n),
        organization={"id": "org-7", "name": "Acme Ltd"},
        metadata={"n": n, "ok": True, "ratio": 0.5},
        **overrides,
    )
    return stored_source(build_document(validate_event(event, now=NOW), NOW))


def test_the_leaf_is_over_the_stored_source_in_canonical_form() -> None:
    event = make_event(event_id="e-1", occurred_at=NOW)
    document = build_document(validate_event(event, now=NOW), NOW)
    stored = stored_source(document)
    assert "search" in document["audit"] and "search" not in stored["audit"]
    reordered = dict(reversed(list(stored.items())))
    assert leaf_hash(reordered) == leaf_hash(stored)  # key order does not matter
    changed = copy.deepcopy(stored)
    changed["message"] += "!"
    assert leaf_hash(changed) != leaf_hash(stored)


def chain(sources: list[list[dict[str, Any]]], key: Ed25519PrivateKey = KEY) -> list[Digest]:
    digests: list[Digest] = []
    previous = GENESIS
    for seq, batch in enumerate(sources, start=1):
        digest = sign_digest(
            key,
            "p-1",
            seq,
            previous,
            "2026-12-01T12:00:00.000Z",
            [entry_of(s) for s in batch],
            time_bounds(batch),
        )
        digests.append(digest)
        previous = digest.hash
    return digests


def store(*sources: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["event"]["id"]: s for s in sources}


BATCHES = [[source(0), source(1)], [source(2)], [source(3), source(4), source(5)]]
ALL = [s for batch in BATCHES for s in batch]


def test_an_untouched_store_verifies() -> None:
    findings = verify_store(chain(BATCHES), KEYS, store(*ALL), WINDOW, LONG_AGO)
    assert findings.clean, findings.lines()
    assert (findings.checked_logs, findings.checked_digests) == (6, 3)


def test_a_changed_deleted_and_inserted_log_are_each_named() -> None:
    tampered = copy.deepcopy(ALL)
    tampered[1]["message"] = "Nothing to see here"
    stored = store(*tampered)
    del stored["e-4"]
    stored["e-99"] = source(99)
    findings = verify_store(chain(BATCHES), KEYS, stored, WINDOW, LONG_AGO)
    assert (findings.changed, findings.deleted, findings.inserted) == (["e-1"], ["e-4"], ["e-99"])
    assert not findings.clean


def test_a_log_ingested_within_the_digest_lag_is_pending_not_inserted() -> None:
    fresh = source(98)
    findings = verify_store(chain(BATCHES), KEYS, store(*ALL, fresh), WINDOW, "2026-12-01")
    assert findings.clean


def test_a_missing_digest_a_resigned_one_and_an_altered_one_are_named() -> None:
    digests = chain(BATCHES)
    assert verify_store(digests[:1] + digests[2:], KEYS, store(*ALL), WINDOW, LONG_AGO)

    missing = verify_store(digests[:1] + digests[2:], KEYS, store(*ALL), WINDOW, LONG_AGO)
    assert missing.missing_digests == [2]
    assert missing.deleted == []  # the logs still verify against nothing: they are inserted
    assert missing.inserted == ["e-2"]

    forger = Ed25519PrivateKey.generate()
    resigned = chain(BATCHES[:1], key=forger) + digests[1:]
    assert verify_store(resigned, KEYS, store(*ALL), WINDOW, LONG_AGO).bad_signatures == [1]

    altered = Digest(digests[2].header, digests[2].signature, digests[2].entries[:2])
    findings = verify_store([*digests[:2], altered], KEYS, store(*ALL), WINDOW, LONG_AGO)
    assert findings.altered_entries == [3]


def test_a_redelivered_log_covered_twice_with_one_leaf_verifies() -> None:
    findings = verify_store(chain([*BATCHES, [source(2)]]), KEYS, store(*ALL), WINDOW, LONG_AGO)
    assert findings.clean


def test_one_log_with_two_leaves_is_a_conflict() -> None:
    other = copy.deepcopy(source(2))
    other["message"] = "other"
    findings = verify_store(chain([*BATCHES, [other]]), KEYS, store(*ALL), WINDOW, LONG_AGO)
    assert findings.conflicting == ["e-2"]


def test_a_digest_round_trips_through_json() -> None:
    digest = chain(BATCHES)[2]
    again = Digest.from_json(digest.to_json())
    assert again == digest and signature_valid(again, KEY.public_key())


def test_keys_load_from_pem_text_or_a_file(tmp_path: Any) -> None:
    pem = private_pem(KEY)
    assert key_id(load_private_key(pem).public_key()) == key_id(KEY.public_key())
    path = tmp_path / "public.pem"
    path.write_text(public_pem(KEY.public_key()))
    assert key_id(load_public_key(str(path))) == key_id(KEY.public_key())


def export_lines(sources: list[dict[str, Any]], digests: list[Digest]) -> list[bytes]:
    import orjson

    lines = []
    for digest in digests:
        leaves = [entry.leaf for entry in digest.entries]
        for index, entry in enumerate(digest.entries):
            document = next(s for s in sources if s["event"]["id"] == entry.log_id)
            line = document_to_log_detail(document)
            line["integrity"] = export_line_integrity(
                document, digest, index, inclusion_proof(leaves, index)
            )
            lines.append(orjson.dumps(line))
    return lines


def test_an_export_verifies_offline_and_a_tampered_line_does_not() -> None:
    import orjson

    digests = chain(BATCHES)
    lines = export_lines(ALL, digests)
    assert verify_export(lines, KEYS, LONG_AGO).clean

    edited = orjson.loads(lines[1])
    edited["description"] = "edited in the file"
    assert verify_export([lines[0], orjson.dumps(edited)], KEYS, LONG_AGO).changed == ["e-1"]

    both = orjson.loads(lines[1])  # the document edited too: its leaf no longer proves in
    both["description"] = both["integrity"]["document"]["message"] = "edited in both"
    assert verify_export([orjson.dumps(both)], KEYS, LONG_AGO).changed == ["e-1"]

    other = {key_id(Ed25519PrivateKey.generate().public_key()): KEY.public_key()}
    assert verify_export(lines[:1], other, LONG_AGO).bad_signatures == [1]


def test_an_export_line_in_no_digest_is_inserted() -> None:
    import orjson

    line = document_to_log_detail(ALL[0])
    line["integrity"] = export_line_integrity(ALL[0], None, 0, [])
    assert verify_export([orjson.dumps(line)], KEYS, LONG_AGO).inserted == ["e-0"]


def test_entries_say_which_log_and_when() -> None:
    assert entry_of(ALL[0]) == Entry("e-0", leaf_hash(ALL[0]), ALL[0]["@timestamp"])
