"""docs/events.md stays true: its JSON examples are valid events, its reasons are real."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

from schemas.catalogue import all_activities
from schemas.event import validate_event

DOC = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text(encoding="utf-8")


def test_json_examples_are_valid_events() -> None:
    blocks = re.findall(r"```json\n(.*?)```", DOC, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        validate_event(json.loads(block), now=datetime(2026, 11, 26, 10, tzinfo=UTC))


def test_every_activity_code_is_listed() -> None:
    for activity in all_activities():
        family, verb = activity.code.rsplit(".", 1)
        assert activity.code in DOC or re.search(rf"`{re.escape(family)}\.[a-z_|]*{verb}", DOC), (
            activity.code
        )
