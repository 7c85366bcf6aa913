"""A realistic, reproducible stream of valid audit events, for demos and load tests.

Every catalogue activity a portal records appears (the first 41 events cover all of them;
the product's own, `SYSTEM_ACTIVITIES`, never do), organizations belong to fixed partners,
actors of all four types act through the UI, the API or the system, about ``failure_rate``
of the actions fail with a reason, updates carry changes, some events carry metadata, and
``occurred_at`` moves forward over ``days`` up to ``now`` with a mix of UTC offsets. The same
``seed`` and ``now`` give the same events.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from schemas.catalogue import SYSTEM_ACTIVITIES, Activity, all_activities

FIRST = [
    "Jane",
    "Omar",
    "Mei",
    "Lukas",
    "Priya",
    "Carlos",
    "Aiko",
    "Fatima",
    "Noah",
    "Elena",
    "Kwame",
    "Sofia",
    "Ivan",
    "Chloé",
    "Mateo",
    "Hana",
]
LAST = [
    "Doe",
    "Haddad",
    "Chen",
    "Müller",
    "Patel",
    "García",
    "Sato",
    "Khan",
    "Smith",
    "Rossi",
    "Mensah",
    "Novak",
    "O'Brien",
    "Dubois",
    "Silva",
    "Kim",
]
ORG_WORDS = [
    "Acme",
    "Northwind",
    "Contoso",
    "Globex",
    "Initech",
    "Umbrella",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Hooli",
    "Vandelay",
    "Soylent",
    "Wonka",
    "Oceanic",
    "Gringotts",
    "Monarch",
    "Massive",
    "Aperture",
    "Dunder",
]
ORG_SUFFIX = ["Ltd", "GmbH", "Inc.", "S.A.", "LLC", "Group", "Partners", "& Co"]
BROWSERS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
]
API_CLIENTS = ["partner-sdk-python/2.4.1", "curl/8.5.0", "PowerShell/7.4", "okhttp/4.12.0"]
SERVICES = ["identity", "org-management", "billing", "licensing", "reporting"]
FAILURE_REASONS = [
    "not_found",
    "permission_denied",
    "conflict",
    "validation_failed",
    "upstream_timeout",
]
OFFSETS = [
    timedelta(0),
    timedelta(hours=1),
    timedelta(hours=-5),
    timedelta(hours=5, minutes=30),
    timedelta(hours=9),
]
CHANGE_FIELDS = {
    "subscription_seat.update": ("seats", lambda r: r.randint(5, 500)),
    "subscription_plan.update": ("plan", lambda r: r.choice(["basic", "standard", "premium"])),
    "pst_download_limit.update": ("pst_download_limit_gb", lambda r: r.choice([5, 10, 50])),
    "ad_group.update": ("display_name", lambda r: f"Team {r.randint(1, 99)}"),
    "delegated_user.update": ("access_level", lambda r: r.choice(["read", "manage"])),
    "owner_general_detail.update": ("phone", lambda r: f"+1 555 {r.randint(1000, 9999)}"),
}
ROLES = ["owner", "super_admin", "admin", "support"]


def organization_name(number: int) -> str:
    """A stable name per organization number, independent of the seed."""
    word = ORG_WORDS[number % len(ORG_WORDS)]
    second = ORG_WORDS[(number // len(ORG_WORDS)) % len(ORG_WORDS)]
    suffix = ORG_SUFFIX[number % len(ORG_SUFFIX)]
    return f"{word} {second} {suffix}" if word != second else f"{word} {suffix}"


def person(rng: random.Random, domain: str) -> tuple[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = f"{first}.{last}".lower().replace("'", "").replace("é", "e").replace("ü", "ue")
    return f"{first} {last}", f"{local}@{domain}"


@dataclass(frozen=True)
class _World:
    partners: int
    organizations: int

    def partner_of(self, org: int) -> str:
        return f"p-{(org - 1) % self.partners + 1:03d}"


def _actor(rng: random.Random, partner_id: str, org: int) -> dict[str, Any]:
    kind = rng.choices(
        ["partner_user", "organization_user", "internal_support", "system"],
        weights=[60, 20, 10, 10],
    )[0]
    if kind == "system":
        service = rng.choice(SERVICES)
        return {"type": kind, "id": f"svc-{service}", "name": f"{service} service"}
    if kind == "internal_support":
        name, email = person(rng, "support.portal.example")
        return {
            "type": kind,
            "id": f"sup-{rng.randint(1, 30):02d}",
            "name": name,
            "email": email,
            "role": "support",
        }
    domain = f"{partner_id}.partner.example" if kind == "partner_user" else f"org-{org}.example"
    name, email = person(rng, domain)
    number = rng.randint(1, 8)
    prefix = f"u-{partner_id}" if kind == "partner_user" else f"ou-{org:04d}"
    return {
        "type": kind,
        "id": f"{prefix}-{number}",
        "name": name,
        "email": email,
        "role": rng.choices(ROLES, weights=[10, 15, 50, 25])[0],
    }


def _source(rng: random.Random, actor: dict[str, Any]) -> dict[str, Any]:
    request_id = f"req-{uuid.UUID(int=rng.getrandbits(128), version=4).hex[:16]}"
    if actor["type"] == "system":
        return {
            "channel": "system",
            "service": actor["id"].removeprefix("svc-"),
            "request_id": request_id,
        }
    channel = rng.choices(["ui", "api"], weights=[75, 25])[0]
    ip = (
        f"203.0.113.{rng.randint(1, 254)}"
        if rng.random() < 0.8
        else f"2001:db8::{rng.randint(1, 0xFFFF):x}"
    )
    agent = rng.choice(BROWSERS if channel == "ui" else API_CLIENTS)
    return {
        "channel": channel,
        "ip": ip,
        "user_agent": agent,
        "service": rng.choice(SERVICES),
        "request_id": request_id,
    }


def _object(rng: random.Random, activity: Activity, org: int, org_name: str) -> dict[str, Any]:
    kind = activity.object_type
    if kind == "organization":
        return {"type": kind, "id": f"org-{org:04d}", "name": org_name}
    if kind == "user":
        name, _ = person(rng, "x.example")
        return {"type": kind, "id": f"ou-{org:04d}-{rng.randint(1, 40)}", "name": name}
    if kind == "ad_group":
        group = rng.choice(["Sales", "Finance", "Engineering", "HR", "Legal"])
        return {"type": kind, "id": f"grp-{rng.randint(100, 999)}", "name": f"{group} team"}
    return {"type": kind, "id": f"{kind}-{rng.randint(1000, 9999)}"}


def _event(
    rng: random.Random, world: _World, activity: Activity, at: datetime, failure_rate: float
) -> dict[str, Any]:
    org = rng.randint(1, world.organizations)
    partner_id, org_name = world.partner_of(org), organization_name(org)
    actor = _actor(rng, partner_id, org)
    offset = timezone(rng.choice(OFFSETS))
    event: dict[str, Any] = {
        "event_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "schema_version": 1,
        "occurred_at": at.astimezone(offset).isoformat(timespec="milliseconds"),
        "action": activity.code,
        "partner_id": partner_id,
        "organization": {"id": f"org-{org:04d}", "name": org_name},
        "actor": actor,
        "source": _source(rng, actor),
        "object": _object(rng, activity, org, org_name),
        "status": "success",
    }
    if rng.random() < failure_rate:
        event.update(status="failure", status_reason=rng.choice(FAILURE_REASONS))
    if activity.code in CHANGE_FIELDS:
        field, value = CHANGE_FIELDS[activity.code]
        event["changes"] = [{"field": field, "old": value(rng), "new": value(rng)}]
    if rng.random() < 0.25:  # the rest get the worker's generated description
        event["description"] = f"{activity.label} for {org_name} (via {event['source']['channel']})"
    if rng.random() < 0.2:
        event["metadata"] = {
            "ticket": f"SUP-{rng.randint(1000, 99999)}",
            "reviewed": rng.random() < 0.5,
        }
    return event


def generate_events(
    count: int,
    seed: int = 0,
    now: datetime | None = None,
    partners: int = 20,
    organizations: int = 500,
    days: float = 30,
    failure_rate: float = 0.05,
) -> Iterator[dict[str, Any]]:
    """``count`` valid v1 events in time order, the last ones close to ``now``."""
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not secrets
    now = now or datetime.now(UTC)
    start, span = now - timedelta(days=days), timedelta(days=days)
    world = _World(partners=partners, organizations=organizations)
    catalogue = [a for a in all_activities() if a.code not in SYSTEM_ACTIVITIES]
    first_pass = rng.sample(catalogue, len(catalogue))  # every activity early in the stream
    for n in range(count):
        activity = first_pass[n] if n < len(first_pass) else rng.choice(catalogue)
        at = start + span * ((n + rng.random()) / max(count, 1))
        yield _event(rng, world, activity, min(at, now), failure_rate)
