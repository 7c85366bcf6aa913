"""The partner's Audit Log page: `/` and its assets, read from the package data in
`api/static/`.

The page itself is public HTML (it holds no data); every data call it makes goes to
`/api/v1/...` with the caller's bearer token, so authentication stays in one place.
Assets are served from an explicit list, never from a user-supplied path.
"""

from __future__ import annotations

from functools import cache
from html import escape
from importlib import resources

from flask import Blueprint, Response, abort, request

from api.collaborators import services

bp = Blueprint("viewer", __name__)

#: The page's files: its style sheet and its ES modules (viewer.js imports the others).
MODULES = ("viewer.js", "api.js", "details.js", "dom.js", "filters.js", "format.js", "token.js")
ASSETS = {
    "viewer.css": "text/css; charset=utf-8",
    **{name: "text/javascript; charset=utf-8" for name in MODULES},
}

# The page loads nothing but its own assets and talks only to its own origin. Framing is
# allowed to the origins of AUDIT_VIEWER_EMBED_ORIGINS only (none by default): those are
# also the only windows the page takes a token from by postMessage (docs/viewer.md).
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self' data:",
        "base-uri 'none'",
        "form-action 'none'",
    )
)


@cache
def _read(name: str) -> bytes:
    # Package data, so the page works from a wheel or an image as well as from a checkout.
    return resources.files("api").joinpath("static", name).read_bytes()


def _serve(name: str, content_type: str, max_age: int) -> Response:
    return _respond(_read(name), content_type, max_age)


def _respond(body: bytes, content_type: str, max_age: int) -> Response:
    response = Response(body, content_type=content_type)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    # Short caching plus an ETag: a new release is picked up within minutes, and a reload
    # in between costs a 304.
    response.cache_control.public = True
    response.cache_control.max_age = max_age
    response.add_etag()
    response.make_conditional(request)  # 304 for a matching If-None-Match; works in place
    return response


ROOT_ELEMENT = '<main id="audit-log"'


def content_security_policy(embed_origins: tuple[str, ...]) -> str:
    ancestors = " ".join(embed_origins) if embed_origins else "'none'"
    return f"{CONTENT_SECURITY_POLICY}; frame-ancestors {ancestors}"


@cache
def _page(embed_origins: tuple[str, ...]) -> bytes:
    """index.html telling viewer.js which parent origins may hand it a token."""
    html = _read("index.html").decode()
    attribute = f' data-embed-origins="{escape(" ".join(embed_origins))}"'
    return html.replace(ROOT_ELEMENT, ROOT_ELEMENT + attribute, 1).encode()


@bp.get("/")
def index() -> Response:
    origins = services().settings.viewer_embed_origins
    response = _respond(_page(origins), "text/html; charset=utf-8", max_age=0)
    response.headers["Content-Security-Policy"] = content_security_policy(origins)
    return response


@bp.get("/assets/<name>")
def asset(name: str) -> Response:
    content_type = ASSETS.get(name)
    if content_type is None:
        abort(404)
    return _serve(name, content_type, max_age=300)
