"""The Audit Log page's assets as the API serves them (no browser, no backend needed):
public HTML with a strict policy, every asset reachable, nothing from another site, and
no way for API data to become markup."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from api.resources import docs, viewer

STATIC = Path(viewer.__file__).resolve().parents[1] / "static"


@pytest.fixture(scope="module")
def client() -> Any:
    from api.app import create_app
    from api.settings import Settings

    # Building the app connects to nothing; these requests never reach Elasticsearch.
    app = create_app(Settings(jwt_secret="assets-test-secret-0123456789abcdef0123"))
    if "viewer" not in app.blueprints:  # until create_app registers it itself
        app.register_blueprint(viewer.bp)
    return app.test_client()


def test_the_page_is_public_while_the_data_needs_a_token(client: Any) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert client.get("/api/v1/audit-logs").status_code == 401


def test_the_page_is_served_with_a_strict_policy(client: Any) -> None:
    headers = client.get("/").headers
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    assert "script-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"


def test_every_asset_the_page_links_is_served_with_its_type(client: Any) -> None:
    html = client.get("/").get_data(as_text=True)
    linked = re.findall(r'(?:href|src)="(assets/[^"]+)"', html)
    assert sorted(linked) == ["assets/viewer.css", "assets/viewer.js"]
    for path in linked:
        reply = client.get("/" + path)
        assert reply.status_code == 200, path
        expected = viewer.ASSETS[path.split("/", 1)[1]].split(";")[0]
        assert reply.mimetype == expected


def test_assets_are_revalidated_cheaply(client: Any) -> None:
    first = client.get("/assets/viewer.js")
    assert first.headers.get("ETag")
    again = client.get("/assets/viewer.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(
    "path", ["/assets/index.html", "/assets/..%2Fapp.py", "/assets/../app.py", "/assets/x.js"]
)
def test_only_listed_assets_are_served(client: Any, path: str) -> None:
    assert client.get(path).status_code == 404


def test_every_shipped_file_is_reachable() -> None:
    shipped = {p.name for p in STATIC.iterdir() if p.is_file()}
    assert shipped == {"index.html", *viewer.ASSETS, docs.SWAGGER_INIT}


@pytest.mark.parametrize("name", ["index.html", *viewer.ASSETS, docs.SWAGGER_INIT])
def test_nothing_is_loaded_from_another_site(name: str) -> None:
    text = (STATIC / name).read_text(encoding="utf-8")
    assert not re.search(r"https?://|//cdn|@import", text), name


def test_api_data_never_becomes_markup() -> None:
    script = "\n".join((STATIC / name).read_text(encoding="utf-8") for name in viewer.MODULES)
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    # Tokens travel in the Authorization header only, never in a URL the page requests.
    assert "Bearer " in script
    assert not re.search(r"[?&]token=", script)


def test_framing_and_token_messages_are_closed_unless_origins_are_configured() -> None:
    from api.app import create_app
    from api.settings import Settings

    secret = "assets-test-secret-0123456789abcdef0123"
    closed = create_app(Settings(jwt_secret=secret)).test_client().get("/")
    assert "frame-ancestors 'none'" in closed.headers["Content-Security-Policy"]
    assert 'data-embed-origins=""' in closed.get_data(as_text=True)

    portal = ("https://portal.example", "http://localhost:3000")
    settings = Settings(jwt_secret=secret, viewer_embed_origins=portal)
    opened = create_app(settings).test_client().get("/")
    policy = opened.headers["Content-Security-Policy"]
    assert "frame-ancestors https://portal.example http://localhost:3000" in policy
    assert 'data-embed-origins="https://portal.example http://localhost:3000"' in (
        opened.get_data(as_text=True)
    )


def test_the_viewer_checks_the_origin_of_token_messages() -> None:
    script = (STATIC / "token.js").read_text(encoding="utf-8")
    listener = script[script.index('addEventListener("message"') :]
    listener = listener[: listener.index("});")]
    assert "event.origin" in listener and "embedOrigins(root)" in listener
    assert '"*")' not in script


def test_every_module_the_viewer_imports_is_served() -> None:
    """Native ES modules: each `import ... from "./x.js"` must be an asset of the page."""
    import re as regex

    for name in viewer.MODULES:
        text = (STATIC / name).read_text(encoding="utf-8")
        for imported in regex.findall(r'from "\./([a-z]+\.js)"', text):
            assert imported in viewer.MODULES, f"{name} imports {imported}, which is not served"
