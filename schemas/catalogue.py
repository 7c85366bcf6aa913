"""The activity catalogue: every known activity code with its label and category.

The data lives in ``schemas/data/activities.csv`` (package data), so adding an activity is
one CSV line. It is read once, lazily, on first lookup.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

# SPEC §2: an unknown code is still indexed when it has this shape.
ACTION_PATTERN = re.compile(r"[a-z0-9_]+(\.[a-z0-9_]+)+")

#: Recorded by the product itself when retention deletes a partner's expired logs
#: (schemas/retention.py); never an action of a portal user.
EXPIRE_ACTION = "audit_log.expire"
#: Activities only the product records: left out of the demo stream.
SYSTEM_ACTIVITIES = frozenset({EXPIRE_ACTION})

OTHER_CATEGORY_CODE = "other"
OTHER_CATEGORY_LABEL = "Other"


@dataclass(frozen=True)
class Activity:
    code: str
    label: str
    category_code: str
    category_label: str
    object_type: str
    known: bool = True  # False for a well-formed code that is not in the catalogue


@dataclass(frozen=True)
class Category:
    code: str
    label: str
    activities: tuple[Activity, ...]


class UnknownActivityError(ValueError):
    """The code is not in the catalogue and is not even a well-formed activity code."""


def is_well_formed(code: str) -> bool:
    return ACTION_PATTERN.fullmatch(code) is not None


@lru_cache(maxsize=1)
def _catalogue() -> dict[str, Activity]:
    text = resources.files("schemas").joinpath("data/activities.csv").read_text("utf-8")
    activities: dict[str, Activity] = {}
    for row in csv.DictReader(io.StringIO(text)):
        activity = Activity(
            code=row["code"].strip(),
            label=row["label"].strip(),
            category_code=row["category_code"].strip(),
            category_label=row["category_label"].strip(),
            object_type=row["object_type"].strip(),
        )
        if not is_well_formed(activity.code) or activity.code in activities:
            # A bad data line must fail loudly at first use, not index garbage.
            raise ValueError(f"activities.csv: bad or duplicate code {activity.code!r}")
        activities[activity.code] = activity
    return activities


def derive_label(code: str) -> str:
    """A readable label for an unknown code: the last segment is usually the verb.

    ``widget.frobnicate`` -> "Frobnicate widget", ``billing.invoice.void`` -> "Void billing
    invoice" (the same "<verb> <object>" style the catalogue uses).
    """
    *subject, verb = code.split(".")
    words = [verb.replace("_", " "), *(part.replace("_", " ") for part in subject)]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def get_activity(code: str) -> Activity:
    """The catalogue entry for ``code``; an unknown well-formed code maps to category other.

    Raises UnknownActivityError for a code that is not well formed.
    """
    known = _catalogue().get(code)
    if known is not None:
        return known
    if not is_well_formed(code):
        raise UnknownActivityError(f"not an activity code: {code!r}")
    return Activity(
        code=code,
        label=derive_label(code),
        category_code=OTHER_CATEGORY_CODE,
        category_label=OTHER_CATEGORY_LABEL,
        object_type=code.split(".", 1)[0],
        known=False,
    )


def all_activities() -> tuple[Activity, ...]:
    """Every catalogue activity, in file order."""
    return tuple(_catalogue().values())


def categories() -> tuple[Category, ...]:
    """The catalogue grouped by category, categories and activities in file order.

    The synthetic ``other`` category is not listed: it has no catalogue activities.
    """
    grouped: dict[str, list[Activity]] = {}
    for activity in all_activities():
        grouped.setdefault(activity.category_code, []).append(activity)
    return tuple(
        Category(code=code, label=items[0].category_label, activities=tuple(items))
        for code, items in grouped.items()
    )
