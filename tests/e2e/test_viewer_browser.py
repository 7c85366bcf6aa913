"""The Audit Log page in a real browser, against the real API and real Elasticsearch.

Debian's Chromium (`apt-get install chromium`) is driven headless by Playwright; no browser
is ever downloaded. Documents are built with `schemas.document.build_document` and indexed
directly (the worker has its own end-to-end tests); exports publish their
`audit_log.download` event to a real Kafka topic.

Screenshots are kept under `test-artifacts/` (git-ignored).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from werkzeug.serving import make_server

from api.devtoken import mint_token
from consumer.digests import digest_document
from deploy.local.processes import free_port
from schemas.document import iso_ms, stored_log
from schemas.event import validate_event
from schemas.index_template import (
    digest_index,
    digest_index_body,
    index_template,
    read_alias,
    template_name,
)
from schemas.integrity import GENESIS, entry_of, load_private_key, sign_digest, time_bounds
from tests.support.tokens import TEST_SIGNING_KEY, TEST_SIGNING_PUBLIC_KEY

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",  # CI runs as root, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SECRET = "viewer-e2e-secret-0123456789abcdef0123456789"
PAGE_SIZE = 50  # the viewer's page size (GET /api/v1/config page_size)
FILLER_COUNT = 62  # with the named events below: more than one page in the last 24 hours

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's Chromium is not installed (apt-get install chromium)"
)
expect.set_options(timeout=20_000)


@dataclass(frozen=True)
class Site:
    url: str
    partner_id: str
    token: str
    events: dict[str, dict[str, Any]]  # by a readable key
    in_last_day: int  # how many of the partner's logs fall in the last 24 hours
    failures_last_day: int
    topic: str
    kafka_bootstrap: str
    #: The one port a portal may embed the page from (AUDIT_VIEWER_EMBED_ORIGINS).
    portal_port: int


# --- data ---------------------------------------------------------------------------------


def _event(partner_id: str, at: datetime, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": f"viewer-{uuid.uuid4()}",
        "schema_version": 1,
        "occurred_at": at.isoformat(timespec="milliseconds"),
        "action": "organization.create",
        "partner_id": partner_id,
        "organization": {"id": "org-7", "name": "Acme Ltd"},
        "actor": {"type": "partner_user", "id": "u-filler", "name": "Fill Er", "role": "owner"},
        "source": {"channel": "ui"},
        "status": "success",
    }
    event.update(fields)
    return event


def _named_events(partner_id: str, now: datetime) -> dict[str, dict[str, Any]]:
    return {
        "compliance": _event(
            partner_id,
            now - timedelta(minutes=3),
            action="compliance.enable",
            actor={
                "type": "partner_user",
                "id": "u-jane",
                "name": "Jane Doe",
                "email": "jane@acme.com",
                "role": "admin",
            },
            source={
                "channel": "ui",
                "ip": "203.0.113.9",
                "user_agent": "Mozilla/5.0 (X11; Linux x86_64) ViewerTest/1.0",
                "service": "org-service",
                "request_id": "req-123",
            },
            object={"type": "organization", "id": "org-7", "name": "Acme Ltd"},
            description="Enabled compliance for Acme Ltd",
            changes=[{"field": "compliance", "old": False, "new": True}],
            metadata={"ticket": "T-1001"},
        ),
        "reset_failed": _event(
            partner_id,
            now - timedelta(minutes=7),
            action="password.reset",
            actor={"type": "internal_support", "id": "u-bob", "name": "Bob Stone"},
            source={"channel": "api", "ip": "2001:db8::1"},
            object={"type": "user", "id": "u-77", "name": "Carol Client"},
            status="failure",
            status_reason="permission_denied",
        ),
        # Text that must stay text: inserted with textContent, never parsed as HTML.
        "markup": _event(
            partner_id,
            now - timedelta(minutes=11),
            action="dpo.enable",
            source={"channel": "system"},
            actor={"type": "system", "id": "scheduler"},
            description='Imported <img src=x onerror="window.__pwned=1"> <b>bold</b>',
        ),
        "three_days_ago": _event(
            partner_id,
            now - timedelta(days=3),
            action="subscription.suspend",
            description="Suspended legacy archive subscription",
        ),
    }


def _filler(partner_id: str, now: datetime, count: int) -> list[dict[str, Any]]:
    return [
        _event(
            partner_id,
            now - timedelta(minutes=20 + i * 10),
            description=f"Created organization number {i}",
            organization={"id": f"org-f{i}", "name": f"Filler {i} GmbH"},
            object={"type": "organization", "id": f"org-f{i}", "name": f"Filler {i} GmbH"},
            status="failure" if i % 10 == 0 else "success",
            status_reason="conflict" if i % 10 == 0 else None,
        )
        for i in range(count)
    ]


def _index(es: Any, prefix: str, events: list[dict[str, Any]], now: datetime) -> None:
    operations: list[dict[str, Any]] = []
    for raw in events:
        raw = {key: value for key, value in raw.items() if value is not None}
        index, doc_id, document = stored_log(prefix, validate_event(raw, now=now), now)
        operations += [{"create": {"_index": index, "_id": doc_id}}, document]
    result = es.bulk(operations=operations, refresh=True)
    assert not result["errors"], result


def _sign(
    es: Any, prefix: str, partner_id: str, events: list[dict[str, Any]], now: datetime
) -> None:
    """A digest covering `events` as the worker would sign it (the logs themselves were
    indexed directly, so nothing else covers them)."""
    sources = []
    for raw in events:
        _, doc_id, _ = stored_log(prefix, validate_event(raw, now=now), now)
        index = f"{prefix}-*"
        sources.append(
            es.search(index=index, query={"ids": {"values": [doc_id]}})["hits"]["hits"][0][
                "_source"
            ]
        )
    digest = sign_digest(
        load_private_key(TEST_SIGNING_KEY),
        partner_id,
        1,
        GENESIS,
        iso_ms(now),
        [entry_of(source) for source in sources],
        time_bounds(sources),
    )
    es.indices.create(index=digest_index(prefix), **digest_index_body())
    es.index(index=digest_index(prefix), document=digest_document(digest), refresh=True)


def _token(partner_id: str, role: str = "owner", org_ids: tuple[str, ...] = ()) -> str:
    return mint_token(SECRET, "u-viewer", partner_id, role, org_ids, name="Viewer Owner")


# --- fixtures (module scope: one index, one API, one browser for all the tests) ---------


@pytest.fixture(scope="module")
def site(es: Any, es_url: str, kafka_bootstrap: str, kafka_admin: Any) -> Iterator[Site]:
    from confluent_kafka.admin import NewTopic

    from api.app import create_app
    from api.resources import viewer
    from api.settings import Settings

    suffix = uuid.uuid4().hex[:10]
    prefix, topic = f"t-viewer-{suffix}", f"t-viewer-downloads-{suffix}"
    partner_id, other_partner = f"p-viewer-{suffix}", f"p-other-{suffix}"
    now = datetime.now(UTC)
    kafka_admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[
        topic
    ].result(timeout=30)
    es.indices.put_index_template(name=template_name(prefix), **index_template(prefix))

    named = _named_events(partner_id, now)
    filler = _filler(partner_id, now, FILLER_COUNT)
    # Another partner's log with the very words searched below: it must never show.
    intruder = _event(other_partner, now - timedelta(minutes=1), action="compliance.enable")
    intruder["description"] = "Enabled compliance for Acme Ltd (other partner)"
    _index(es, prefix, [*named.values(), *filler, intruder], now)
    _sign(es, prefix, partner_id, [named["compliance"]], now)

    portal_port = free_port()
    settings = Settings(
        jwt_secret=SECRET,
        elasticsearch_url=es_url,
        index_prefix=prefix,
        kafka_bootstrap_servers=kafka_bootstrap,
        events_topic=topic,
        viewer_embed_origins=(f"http://127.0.0.1:{portal_port}",),
        signing_public_keys=(TEST_SIGNING_PUBLIC_KEY,),
    )
    app = create_app(settings)
    if "viewer" not in app.blueprints:  # until create_app registers it itself
        app.register_blueprint(viewer.bp)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    last_day = [e for e in [*named.values(), *filler] if e is not named["three_days_ago"]]
    try:
        yield Site(
            url=f"http://127.0.0.1:{server.server_port}",
            partner_id=partner_id,
            token=_token(partner_id),
            events=named,
            in_last_day=len(last_day),
            failures_last_day=sum(e["status"] == "failure" for e in last_day),
            topic=topic,
            kafka_bootstrap=kafka_bootstrap,
            portal_port=portal_port,
        )
    finally:
        server.shutdown()
        thread.join(timeout=10)
        es.options(ignore_status=404).indices.delete(index=f"{prefix}-*,{digest_index(prefix)}")
        es.options(ignore_status=404).indices.delete_index_template(name=template_name(prefix))
        kafka_admin.delete_topics([topic])
    assert read_alias(prefix) == prefix


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(
        accept_downloads=True,
        viewport={"width": 1440, "height": 900},
        locale="en-US",
        timezone_id="UTC",
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:  # what the page showed when it failed
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}.png"))
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"


def _open(page: Any, site: Site, token: str | None = None) -> Any:
    page.goto(f"{site.url}/#token={token or site.token}")
    return page


def _rows(page: Any) -> Any:
    return page.locator("#al-table tbody tr")


def _row(page: Any, event: dict[str, Any]) -> Any:
    return page.locator(f'#al-table tbody tr[data-id="{event["event_id"]}"]')


def _local(moment: datetime) -> str:
    """A datetime-local input's value (the browser runs in UTC, so local == UTC)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _search(page: Any, text: str) -> None:
    box = page.get_by_role("searchbox", name="Search audit logs")
    box.fill("")
    box.press_sequentially(text)


# --- tests ----------------------------------------------------------------------------------


def test_the_page_lists_the_last_24_hours_newest_first_and_loads_more(
    page: Any, site: Site
) -> None:
    _open(page, site)
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    expect(page.locator("#al-status")).to_contain_text(
        f"Showing {PAGE_SIZE} of {site.in_last_day} logs"
    )
    # The dev token is taken out of the address bar once read.
    assert "token=" not in page.url
    headers = [h.strip() for h in page.locator("#al-table thead th").all_inner_texts()]
    assert [h.lower() for h in headers] == [
        "time",
        "activity",
        "category",
        "actor",
        "object",
        "source",
        "status",
        "description",
    ]
    first = _rows(page).first
    assert first.get_attribute("data-id") == site.events["compliance"]["event_id"]
    expect(first).to_contain_text("Enable compliance")
    expect(first).to_contain_text("Organization Management")
    expect(first).to_contain_text("Jane Doe")
    expect(first).to_contain_text("Acme Ltd")
    expect(first).to_contain_text("UI")
    expect(first).to_contain_text("Success")

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-list.png"))

    page.get_by_role("button", name="Load more").click()
    expect(_rows(page)).to_have_count(site.in_last_day)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    expect(page.locator("#al-status")).to_have_text(f"{site.in_last_day} logs — last 24 hours.")
    ids = [row.get_attribute("data-id") for row in _rows(page).all()]
    assert len(set(ids)) == len(ids), "a log was repeated across pages"
    assert site.events["three_days_ago"]["event_id"] not in ids


def test_typing_a_partial_term_narrows_the_rows(page: Any, site: Site) -> None:
    _open(page, site)
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    list_calls: list[str] = []
    page.on(
        "request",
        lambda r: list_calls.append(r.url) if "/api/v1/audit-logs?" in r.url else None,
    )

    _search(page, "ompli")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["compliance"])).to_be_visible()
    # Debounced: five keystrokes, not five searches.
    assert len([u for u in list_calls if "q=" in u]) < len("ompli")

    _search(page, "acme.co")  # inside the actor's email
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["compliance"])).to_be_visible()

    _search(page, "Carol")  # the object's name, any case
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["reset_failed"])).to_be_visible()

    # Enter searches at once; nothing matches: the empty state says so and offers a way out.
    box = page.get_by_role("searchbox", name="Search audit logs")
    box.fill("zzqx-nothing-matches")
    box.press("Enter")
    expect(_rows(page)).to_have_count(0)
    empty = page.locator("#al-empty")
    expect(empty).to_contain_text("No audit logs match your search and filters.")
    empty.get_by_role("button", name="Clear search and filters").click()
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    expect(box).to_have_value("")


def test_a_newer_search_cancels_the_one_still_in_flight(page: Any, site: Site) -> None:
    held: list[Any] = []
    aborted: list[str] = []

    def hold_acme(route: Any) -> None:
        # The "acme" search gets no answer until the test says so: it is still in flight
        # when the user searches again.
        if "q=acme" in route.request.url:
            held.append(route)
        else:
            route.continue_()

    page.route("**/api/v1/audit-logs?*", hold_acme)
    page.on("requestfailed", lambda r: aborted.append(r.url) if "q=acme" in r.url else None)
    _open(page, site)
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    box = page.get_by_role("searchbox", name="Search audit logs")
    box.fill("acme")
    box.press("Enter")
    expect(page.locator("#al-status")).to_have_text("Loading audit logs…")
    assert len(held) == 1
    box.fill("Carol")
    box.press("Enter")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["reset_failed"])).to_be_visible()
    deadline = time.monotonic() + 10
    while not aborted and time.monotonic() < deadline:
        page.evaluate("0")  # each round trip lets Playwright deliver pending events
    assert aborted, "the superseded request was not cancelled"
    # Even if its answer came now, it would not replace the newer result.
    with contextlib.suppress(Exception):  # the browser may have dropped it already
        held[0].continue_()
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["reset_failed"])).to_be_visible()


def test_filters_narrow_the_list(page: Any, site: Site) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _open(page, site)
    expect(_rows(page)).to_have_count(PAGE_SIZE)

    # Activity picker (next to "More filters"), filled from GET /api/v1/activities.
    page.get_by_label("Activity", exact=True).select_option(label="Reset password")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["reset_failed"])).to_contain_text("Failed")
    page.get_by_label("Activity", exact=True).select_option(label="All activities")
    expect(_rows(page)).to_have_count(PAGE_SIZE)

    toggle = page.get_by_role("button", name="More filters")
    expect(toggle).to_have_attribute("aria-expanded", "false")
    toggle.click()
    expect(toggle).to_have_attribute("aria-expanded", "true")
    page.get_by_label("Status").select_option(label="Failed")
    expect(_rows(page)).to_have_count(site.failures_last_day)
    for text in _rows(page).locator("td.al-col-status").all_inner_texts():
        assert text.startswith("Failed")
    page.get_by_label("Source").select_option(label="API")
    expect(_rows(page)).to_have_count(1)
    expect(page.get_by_role("button", name="More filters, 2 active")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "viewer-filters.png"))

    page.get_by_role("button", name="Reset filters").click()
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    page.get_by_label("Actor ID").fill("u-bob")
    expect(_rows(page)).to_have_count(1)
    page.get_by_label("Actor ID").fill("")
    page.get_by_label("Organization ID").fill("org-f3, org-f4")
    expect(_rows(page)).to_have_count(2)
    page.get_by_label("Organization ID").fill("")
    page.get_by_label("Category").select_option(label="Login & Accessibility")
    expect(_rows(page)).to_have_count(1)
    page.get_by_label("Category").select_option(label="All categories")

    # Date range: the three-day-old log appears with "Last 7 days" only.
    _search(page, "legacy")
    expect(_rows(page)).to_have_count(0)
    page.get_by_label("Date range").select_option(label="Last 7 days")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["three_days_ago"])).to_be_visible()

    # A custom range around it.
    at = datetime.fromisoformat(site.events["three_days_ago"]["occurred_at"])
    page.get_by_label("Date range").select_option(label="Custom range")
    start, end = page.get_by_label("From", exact=True), page.get_by_label("To", exact=True)
    start.fill(_local(at - timedelta(hours=1)))
    end.fill(_local(at + timedelta(hours=1)))
    _search(page, "")
    expect(_rows(page)).to_have_count(1)
    expect(_row(page, site.events["three_days_ago"])).to_be_visible()
    # From after To is refused in the page, before any request.
    start.fill(_local(at + timedelta(hours=2)))
    expect(page.locator("#al-range-error")).to_contain_text("must be before its end")

    page.get_by_role("button", name="Clear filters").click()
    expect(_rows(page)).to_have_count(PAGE_SIZE)


def test_a_row_opens_its_details_and_escape_closes_them(page: Any, site: Site) -> None:
    event = site.events["compliance"]
    _open(page, site)
    row = _row(page, event)
    row.click()
    details = page.get_by_role("complementary", name="Enable compliance")
    expect(details).to_be_visible()
    expect(details).to_contain_text(event["event_id"])
    expect(details).to_contain_text("203.0.113.9")
    expect(details).to_contain_text("ViewerTest/1.0")
    expect(details).to_contain_text("req-123")
    expect(details).to_contain_text("org-service")
    expect(details).to_contain_text("jane@acme.com")
    expect(details).to_contain_text("Admin")
    changes = details.locator("table").first
    expect(changes.locator("tbody tr")).to_have_count(1)
    assert changes.locator("tbody tr th, tbody tr td").all_inner_texts() == [
        "compliance",
        "false",
        "true",
    ]
    expect(details.locator("table").nth(1)).to_contain_text("T-1001")
    expect(details).to_contain_text("Ingested")
    integrity = details.locator(".al-integrity")
    expect(integrity).to_have_attribute("data-integrity", "verified")
    expect(integrity).to_contain_text("Covered by signed digest #1")
    expect(row).to_have_attribute("aria-current", "true")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "viewer-details.png"))

    page.keyboard.press("Escape")
    expect(details).to_be_hidden()
    expect(row).to_be_focused()

    # Keyboard only: arrow to the next row, Enter opens it, the close button closes it.
    page.keyboard.press("ArrowDown")
    second = _rows(page).nth(1)
    expect(second).to_be_focused()
    page.keyboard.press("Enter")
    failed = page.get_by_role("complementary", name="Reset password")
    expect(failed).to_contain_text("permission_denied")
    expect(failed).to_contain_text("2001:db8::1")
    expect(failed).to_contain_text("No changes recorded.")
    expect(failed.locator(".al-integrity")).to_have_attribute("data-integrity", "not_covered")
    failed.get_by_role("button", name="Close details").click()
    expect(failed).to_be_hidden()


def test_export_downloads_a_csv_of_the_filtered_logs(page: Any, site: Site) -> None:
    from confluent_kafka import Consumer

    event = site.events["compliance"]
    _open(page, site)
    _search(page, "ompli")
    expect(_rows(page)).to_have_count(1)
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Export CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith(".csv")
    text = Path(download.path()).read_text(encoding="utf-8")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["id"] for r in rows] == [event["event_id"]]
    assert rows[0]["activity"] == "Enable compliance"
    assert rows[0]["ip"] == "203.0.113.9"
    expect(page.get_by_role("button", name="Export CSV")).to_be_enabled()

    # The export was itself recorded as an audit_log.download event, with the search.
    consumer = Consumer(
        {
            "bootstrap.servers": site.kafka_bootstrap,
            "group.id": f"viewer-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    try:
        consumer.subscribe([site.topic])
        recorded = _poll_json(consumer, lambda e: e.get("action") == "audit_log.download")
    finally:
        consumer.close()
    assert recorded["partner_id"] == site.partner_id
    assert recorded["metadata"]["q"] == "ompli"


def test_api_text_is_shown_as_text_never_as_markup(page: Any, site: Site) -> None:
    _open(page, site)
    row = _row(page, site.events["markup"])
    expect(row).to_contain_text("<b>bold</b>")
    assert row.locator("img, b").count() == 0
    row.click()
    details = page.get_by_role("complementary", name="Enable DPO")
    expect(details).to_contain_text('<img src=x onerror="window.__pwned=1">')
    assert details.locator("img").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_without_or_with_a_bad_token_the_page_says_what_to_do(page: Any, site: Site) -> None:
    page.goto(f"{site.url}/")
    expect(page.locator("#al-empty")).to_contain_text("Sign in to see the audit log.")
    expect(_rows(page)).to_have_count(0)

    expired = jwt.encode(
        {"sub": "u", "partner_id": site.partner_id, "role": "owner", "exp": 1}, SECRET, "HS256"
    )
    page.goto(f"{site.url}/#token={expired}")
    expect(page.get_by_role("alert")).to_contain_text("session has expired")

    # A role outside the four is refused with a message, not an empty table.
    page.goto(f"{site.url}/#token={_token(site.partner_id, role='viewer')}")
    expect(page.get_by_role("alert")).to_contain_text("role does not give access")


def test_an_admin_sees_only_the_organizations_they_manage(page: Any, site: Site) -> None:
    _open(page, site, token=_token(site.partner_id, role="admin", org_ids=("org-f5",)))
    expect(_rows(page)).to_have_count(1)
    expect(_rows(page).first).to_contain_text("Filler 5 GmbH")


# --- helpers --------------------------------------------------------------------------------


@contextmanager
def _serve_html(html: str, port: int = 0) -> Iterator[str]:
    """A one-page web server on its own loopback port (so on its own origin)."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [html.encode()]

    server = make_server("127.0.0.1", port, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join(timeout=10)


def _poll_json(
    consumer: Any, wanted: Callable[[dict[str, Any]], bool], timeout_s: float = 30
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        value = json.loads(message.value())
        if wanted(value):
            return dict(value)
    raise AssertionError(f"no matching event within {timeout_s:.0f}s")


def test_on_a_phone_the_details_cover_the_list_and_close_again(browser: Any, site: Site) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = context.new_page()
        _open(page, site)
        row = _row(page, site.events["compliance"])
        row.click()
        details = page.get_by_role("complementary", name="Enable compliance")
        expect(details).to_contain_text("203.0.113.9")
        box = details.bounding_box()
        assert box is not None and box["width"] <= 390
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "viewer-phone-details.png"))
        details.get_by_role("button", name="Close details").click()
        expect(details).to_be_hidden()
        expect(row).to_be_focused()
    finally:
        context.close()


def _portal(site: Site, tokens: list[str]) -> str:
    """The portal page of docs/viewer.md, "As an iframe", handing out `tokens` in turn."""
    return f"""<!doctype html><title>Portal</title>
<iframe id="viewer" title="Audit log" src="{site.url}/" style="width:1400px;height:800px"></iframe>
<script>
  const VIEWER = {json.dumps(site.url)};
  const frame = document.getElementById("viewer");
  const tokens = {json.dumps(tokens)};
  window.asked = [];
  window.addEventListener("message", (event) => {{
    if (event.origin !== VIEWER || event.source !== frame.contentWindow) return;
    window.asked.push(event.data.type);
    const token = tokens.length > 1 ? tokens.shift() : tokens[0];
    frame.contentWindow.postMessage({{type: "audit-log:token", token}}, VIEWER);
  }});
  // Unasked, too: a frame that takes tokens from anyone would use this one.
  frame.addEventListener("load", () => {{
    frame.contentWindow.postMessage({{type: "audit-log:token", token: tokens.at(-1)}}, "*");
  }});
</script>"""


def test_a_portal_on_another_origin_embeds_the_page_and_hands_it_tokens(
    page: Any, site: Site
) -> None:
    """docs/viewer.md, "As an iframe": the frame asks its parent for a token, and again when
    the API refuses the first one; the portal (an allowed origin) answers with postMessage."""
    expired = jwt.encode(
        {"sub": "u", "partner_id": site.partner_id, "role": "owner", "exp": 1}, SECRET, "HS256"
    )
    # The portal on its own origin (another port). A real server, not a routed page:
    # Chromium refuses to let a page it deems public frame a loopback address.
    with _serve_html(_portal(site, [expired, site.token]), port=site.portal_port) as portal_url:
        page.goto(portal_url)
        frame = page.frame_locator("#viewer")
        expect(frame.locator("#al-table tbody tr")).to_have_count(PAGE_SIZE)
        asked = page.evaluate("window.asked")
    assert asked[0] == "audit-log:token-request"
    assert "audit-log:token-expired" in asked  # the expired token was refused, then replaced
    expect(frame.get_by_role("alert")).to_have_count(0)


def test_a_portal_on_an_origin_not_allowed_can_neither_frame_nor_feed_the_page(
    page: Any, site: Site
) -> None:
    """frame-ancestors keeps the page out of other origins' frames, so no token they post is
    ever used (and the page asks them for none)."""
    blocked: list[str] = []
    page.on("console", lambda message: blocked.append(message.text))
    with _serve_html(_portal(site, [site.token])) as portal_url:  # any other port
        page.goto(portal_url)
        page.wait_for_function(
            "() => document.getElementById('viewer').contentWindow !== null", timeout=10_000
        )
        # Chromium reports the refusal on the console once it has applied the policy.
        deadline = time.monotonic() + 15
        while not any("frame-ancestors" in text for text in blocked):
            assert time.monotonic() < deadline, f"no frame-ancestors refusal seen: {blocked}"
            page.wait_for_timeout(100)
        assert page.evaluate("window.asked") == []
        assert page.frame_locator("#viewer").locator("#al-table tbody tr").count() == 0


def test_a_same_origin_page_embeds_the_script_with_a_data_token(page: Any, site: Site) -> None:
    """docs/viewer.md, "In the portal's own page": assets and API behind one origin."""
    host = f"""<!doctype html><title>Portal</title>
<link rel="stylesheet" href="/assets/viewer.css">
<h1>Partner portal</h1>
<div data-audit-log class="al-root" data-api-base="/" data-token="{site.token}"></div>
<script type="module" src="/assets/viewer.js"></script>"""
    page.route(
        f"{site.url}/portal/",
        lambda route: route.fulfill(status=200, content_type="text/html", body=host),
    )
    page.goto(f"{site.url}/portal/")
    expect(_rows(page)).to_have_count(PAGE_SIZE)
    # Read once, then gone from the DOM where other scripts could find it.
    assert page.locator("[data-audit-log]").get_attribute("data-token") is None


def test_swagger_ui_renders_from_this_origin_alone(page: Any, site: Site) -> None:
    """/docs/swagger works under its policy (scripts of this origin only) and offline."""
    elsewhere: list[str] = []
    page.on(
        "request",
        lambda request: None if request.url.startswith(site.url) else elsewhere.append(request.url),
    )
    page.goto(f"{site.url}/docs/swagger")
    expect(page.locator(".opblock").first).to_be_visible(timeout=15_000)
    assert page.locator(".opblock").count() >= 6
    assert elsewhere == []
