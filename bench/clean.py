"""``python -m bench.clean [--dry-run]`` (``make bench-clean``): delete what the benchmarks keep.

The B3/B4 dataset (``bench-b3-<N>-*`` indices and template) is kept between runs on purpose;
this removes it, with any index, template or topic named ``bench-*`` a crashed run left.
"""

from __future__ import annotations

import argparse
import contextlib

from bench.output import log
from bench.services import NAME_PREFIX, delete_topics, es_client, kafka_admin


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.clean", description=__doc__)
    parser.add_argument("--dry-run", action="store_true", help="only list what would go")
    args = parser.parse_args(argv)
    es = es_client()
    reply = es.options(ignore_status=404).indices.get_index_template(name=f"{NAME_PREFIX}*")
    templates = [t["name"] for t in reply.get("index_templates", [])]
    indices = list(es.indices.get(index=f"{NAME_PREFIX}*", expand_wildcards="all"))
    topics = [t for t in kafka_admin().list_topics(timeout=10).topics if t.startswith(NAME_PREFIX)]
    verb = "would delete" if args.dry_run else "deleted"
    if not args.dry_run:
        for name in templates:
            with contextlib.suppress(Exception):
                es.indices.delete_index_template(name=name)
        for index in indices:
            with contextlib.suppress(Exception):
                es.indices.delete(index=index)
        delete_topics(topics)
    log(f"{verb} {len(indices)} indices, {len(templates)} templates, {len(topics)} topics")
    for name in sorted(indices) + sorted(topics):
        print(f"  {name}")


if __name__ == "__main__":
    main()
