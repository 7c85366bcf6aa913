"""`audit-log verify` and `audit-log keygen` without a store: arguments, keys, files."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.cli import main
from schemas.integrity import key_id, load_private_key, load_public_key, public_pem


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "signing-key.pem"
    assert main(["keygen", "--out", str(out)]) == 0
    private, public = (
        load_private_key(str(out)),
        load_public_key(str(tmp_path / "signing-key.pub.pem")),
    )
    assert key_id(private.public_key()) == key_id(public)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert key_id(public) in capsys.readouterr().err
    before = out.read_bytes()
    assert main(["keygen", "--out", str(out)]) == 2
    assert out.read_bytes() == before


def test_verify_without_a_public_key_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUDIT_SIGNING_PUBLIC_KEY", raising=False)
    export = tmp_path / "e.ndjson"
    export.write_text("")
    assert main(["verify", "--export", str(export)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "public key" in err


@pytest.mark.parametrize("lag", ["soon", "5x", "5 minutes"])
def test_a_bad_lag_is_one_line(
    lag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.pub.pem"
    key.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    export = tmp_path / "e.ndjson"
    export.write_text("")
    assert main(["verify", "--export", str(export), "--public-key", str(key), "--lag", lag]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_an_export_line_without_proof_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "k.pub.pem"
    key.write_text(public_pem(Ed25519PrivateKey.generate().public_key()))
    export = tmp_path / "e.ndjson"
    export.write_text(json.dumps({"id": "e-1", "description": "no proof"}) + "\n")
    assert main(["verify", "--export", str(export), "--public-key", str(key)]) == 1
    out = capsys.readouterr()
    assert out.out.splitlines() == ["changed: log e-1"]
    assert "NOT verified" in out.err
