#!/usr/bin/env python3
"""Load the Partner Audit Log's Kibana objects (data view, saved search, dashboard).

    python3 deploy/kibana/import.py            # or: make kibana-import

Posts `partner-audit-log.ndjson` (next to this file) to Kibana's saved-objects import API,
overwriting earlier versions of the same objects (their ids are fixed), after waiting for
Kibana to be available. Standard library only, so it runs anywhere Python does (the API
image runs it in docker-compose.yml).

Environment:
    KIBANA_URL              default http://127.0.0.1:5601
    KIBANA_API_KEY          or KIBANA_USERNAME + KIBANA_PASSWORD (unset: no authentication)
    KIBANA_CA_CERTS         CA bundle for an https KIBANA_URL with a private CA
    KIBANA_SPACE            a Kibana space id (default: the default space)
    KIBANA_WAIT_SECONDS     how long to wait for Kibana to be available (default 300)
    AUDIT_INDEX_PREFIX      the data view covers `{prefix}*` (default audit-logs)
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NDJSON = Path(__file__).resolve().parent / "partner-audit-log.ndjson"
DATA_VIEW_TYPE = "index-pattern"
DASHBOARD_ID = "partner-audit-logs-overview"
DEFAULT_PREFIX = "audit-logs"


class ImportFailed(Exception):
    """Kibana could not be reached or refused some objects; the message says which."""


def load_objects(path: Path = NDJSON) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def with_index_prefix(objects: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """The objects with the data view set to the read alias `{prefix}`, so a deployment with
    another AUDIT_INDEX_PREFIX gets a working data view without editing the file. The alias,
    not `{prefix}*`: a copy being made by `audit-log indices migrate` or `retention` matches
    the pattern but stays outside the alias until it replaces its source, so a pattern would
    show its logs twice meanwhile."""
    result = []
    for obj in objects:
        if obj.get("type") == DATA_VIEW_TYPE:
            obj = {**obj, "attributes": {**obj["attributes"], "title": prefix}}
        result.append(obj)
    return result


def to_ndjson(objects: list[dict[str, Any]]) -> bytes:
    lines = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) for obj in objects)
    return ("\n".join(lines) + "\n").encode("utf-8")


def multipart(field: str, filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file part (what the import API expects)."""
    boundary = f"----partner-audit-log-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), boundary


def auth_headers(env: Mapping[str, str]) -> dict[str, str]:
    if env.get("KIBANA_API_KEY"):
        return {"Authorization": f"ApiKey {env['KIBANA_API_KEY']}"}
    if env.get("KIBANA_USERNAME"):
        pair = f"{env['KIBANA_USERNAME']}:{env.get('KIBANA_PASSWORD', '')}".encode()
        return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return {}


def space_path(env: Mapping[str, str]) -> str:
    space = env.get("KIBANA_SPACE", "").strip()
    return f"/s/{urllib.parse.quote(space, safe='')}" if space and space != "default" else ""


class Kibana:
    def __init__(self, env: Mapping[str, str]) -> None:
        self.url = env.get("KIBANA_URL", "http://127.0.0.1:5601").rstrip("/")
        if urllib.parse.urlsplit(self.url).scheme not in ("http", "https"):
            raise ImportFailed(f"KIBANA_URL must be an http(s) URL, got {self.url!r}")
        self.space = space_path(env)
        self.headers = {"kbn-xsrf": "partner-audit-log", **auth_headers(env)}
        cafile = env.get("KIBANA_CA_CERTS") or None
        self.context = ssl.create_default_context(cafile=cafile) if cafile else None

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, Any]:
        # The scheme was checked in __init__: http(s) only, never file: or others.
        request = urllib.request.Request(  # noqa: S310
            self.url + path, data=body, method=method, headers={**self.headers, **(headers or {})}
        )
        try:
            with urllib.request.urlopen(request, timeout=30, context=self.context) as reply:  # noqa: S310
                return reply.status, json.loads(reply.read() or b"null")
        except urllib.error.HTTPError as error:
            text = error.read().decode("utf-8", "replace")
            try:
                return error.code, json.loads(text)
            except ValueError:
                return error.code, text

    def wait_available(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while True:
            try:
                status, body = self.request("GET", "/api/status")
                level = (
                    body.get("status", {}).get("overall", {}).get("level")
                    if isinstance(body, dict)
                    else None
                )
                if status == 200 and level in (None, "available"):
                    return
                if status in (401, 403):
                    raise ImportFailed(
                        f"Kibana at {self.url} refused the credentials ({status}); set "
                        "KIBANA_API_KEY or KIBANA_USERNAME/KIBANA_PASSWORD"
                    )
                last = f"HTTP {status}, status {level}"
            except (urllib.error.URLError, OSError) as error:
                last = str(getattr(error, "reason", error))
            if time.monotonic() > deadline:
                raise ImportFailed(
                    f"Kibana at {self.url} was not available within {timeout_s:.0f}s ({last})"
                )
            time.sleep(3)

    def import_objects(self, objects: list[dict[str, Any]]) -> dict[str, Any]:
        body, boundary = multipart("file", "partner-audit-log.ndjson", to_ndjson(objects))
        status, reply = self.request(
            "POST",
            f"{self.space}/api/saved_objects/_import?overwrite=true",
            body,
            {"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        if status != 200 or not isinstance(reply, dict):
            raise ImportFailed(f"import refused: HTTP {status}: {reply}")
        return reply


def describe_errors(reply: Mapping[str, Any]) -> list[str]:
    return [
        f"{error.get('type')} {error.get('id')}: {json.dumps(error.get('error'))}"
        for error in reply.get("errors") or []
    ]


def main(env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    prefix = env.get("AUDIT_INDEX_PREFIX", "").strip() or DEFAULT_PREFIX
    objects = with_index_prefix(load_objects(), prefix)
    try:
        kibana = Kibana(env)
        kibana.wait_available(float(env.get("KIBANA_WAIT_SECONDS", "300")))
        reply = kibana.import_objects(objects)
    except ImportFailed as error:
        print(f"kibana-import: {error}", file=sys.stderr)
        return 1
    errors = describe_errors(reply)
    if errors or not reply.get("success"):
        print("kibana-import: some objects were not imported:", file=sys.stderr)
        for line in errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    print(
        f"kibana-import: {reply.get('successCount', len(objects))} objects imported "
        f"(data view {prefix}*, saved search, dashboard)\n"
        f"  dashboard: {kibana.url}{kibana.space}/app/dashboards#/view/{DASHBOARD_ID}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
