"""`/docs`: the API reference as plain server-rendered HTML, generated from the same
OpenAPI document as `/openapi.json`. It needs no JavaScript and no CDN, so it works on an
offline laptop. The interactive Swagger UI (`/docs/swagger`) is served from this origin too,
from the pinned `flask-swagger-ui` package: the viewer's token lives on this origin, so no
script from elsewhere may ever run here."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from flask import Blueprint, Response, abort, current_app, render_template_string

bp = Blueprint("docs", __name__)

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'"
)
# Swagger UI styles some elements inline; its scripts are all files of this origin.
SWAGGER_CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
#: Files of the Swagger UI distribution this page loads (never a path from the request).
SWAGGER_ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
}
#: This project's own start-up script of Swagger UI (in api/static, with the viewer's files).
SWAGGER_INIT = "swagger-init.js"
SWAGGER_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }} — Swagger UI {{ version }}</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/docs/swagger/assets/swagger-ui.css">
</head><body>
<div id="swagger-ui" data-openapi-url="/openapi.json"></div>
<script src="/docs/swagger/assets/swagger-ui-bundle.js"></script>
<script src="/docs/swagger/assets/swagger-init.js"></script>
</body></html>"""

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ info.title }} — API reference</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
code,pre{font:13px ui-monospace,monospace;background:#f4f4f4;padding:.1rem .3rem}
pre{padding:.6rem;white-space:pre-wrap}
h2{border-top:1px solid #ddd;padding-top:1rem}
table{border-collapse:collapse;width:100%;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}
.method{font-weight:bold;color:#05a}
</style></head><body>
<h1>{{ info.title }} <small>{{ info.version }}</small></h1>
<pre>{{ info.description }}</pre>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> ·
interactive: <a href="/docs/swagger">Swagger UI</a></p>
{% for method, path, op, parameters in operations %}
<h2><span class="method">{{ method|upper }}</span> <code>{{ path }}</code></h2>
<p>{{ op.summary or "" }}</p>
{% if op.description %}<pre>{{ op.description }}</pre>{% endif %}
<p>{% if op.security == [] %}No token needed.{% else %}Needs <code>Authorization: Bearer
&lt;JWT&gt;</code>.{% endif %}</p>
{% if parameters %}<table><tr><th>parameter</th><th>in</th><th>type</th>
<th>description</th></tr>
{% for p in parameters %}<tr><td><code>{{ p.name }}</code>{% if p.required %} *{% endif %}
</td><td>{{ p.in }}</td><td>{{ describe(p.schema) }}</td><td>{{ p.description or "" }}</td>
</tr>{% endfor %}</table>{% endif %}
<table><tr><th>status</th><th>meaning</th></tr>
{% for status, response in op["responses"].items() %}<tr><td>{{ status }}</td>
<td>{{ response.description or "" }}</td></tr>{% endfor %}</table>
{% endfor %}
</body></html>"""


def describe(schema: dict[str, Any] | None) -> str:
    """A one-line summary of a parameter's JSON schema (type, enum, bounds)."""
    if not schema:
        return ""
    if schema.get("type") == "array":
        return f"repeatable {describe(schema.get('items'))}"
    parts = [str(schema.get("format") or schema.get("type", ""))]
    if "enum" in schema:
        parts.append("one of " + ", ".join(map(str, schema["enum"])))
    for key, label in (("minimum", "≥"), ("maximum", "≤"), ("maxLength", "length ≤")):
        if key in schema:
            parts.append(f"{label} {schema[key]}")
    if "default" in schema:
        parts.append(f"default {schema['default']}")
    if "pattern" in schema:
        parts.append(f"pattern {schema['pattern']}")
    return "; ".join(part for part in parts if part)


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any], list[Any]]]:
    """(method, path, operation, parameters) in document order; path-level parameters
    (such as `log_id`) are listed with each operation of the path."""
    result = []
    for path, item in spec["paths"].items():
        shared = item.get("parameters", [])
        for method in HTTP_METHODS:
            if method in item:
                operation = item[method]
                # An operation's own parameter overrides the path's one of that name.
                merged = {(p["in"], p["name"]): p for p in shared}
                merged.update({(p["in"], p["name"]): p for p in operation.get("parameters", [])})
                result.append((method, path, operation, list(merged.values())))
    return result


@bp.get("/docs")
def reference() -> Response:
    # flask-smorest's registry of Apis, by config prefix (this app has one, unprefixed);
    # `current_api` only resolves inside flask-smorest's own blueprints.
    spec = current_app.extensions["flask-smorest"]["apis"][""]["ext_obj"].spec.to_dict()
    html = render_template_string(
        PAGE, info=spec["info"], operations=operations(spec), describe=describe
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@cache
def _swagger_file(name: str) -> bytes:
    if name == SWAGGER_INIT:  # ours: the page may run no inline script
        return resources.files("api").joinpath("static", name).read_bytes()
    return resources.files("flask_swagger_ui").joinpath("dist", name).read_bytes()


@cache
def swagger_version() -> str:
    return _swagger_file("VERSION").decode().strip()


@bp.get("/docs/swagger")
def swagger() -> Response:
    html = render_template_string(
        SWAGGER_PAGE, title=current_app.config["API_TITLE"], version=swagger_version()
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = SWAGGER_CONTENT_SECURITY_POLICY
    return response


@bp.get("/docs/swagger/assets/<name>")
def swagger_asset(name: str) -> Response:
    types = {**SWAGGER_ASSETS, SWAGGER_INIT: "text/javascript; charset=utf-8"}
    if name not in types:
        abort(404)
    response = Response(_swagger_file(name), content_type=types[name])
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response
