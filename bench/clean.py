"""``python -m bench.clean`` (``make bench-clean``): delete what the benchmarks keep or left.

The B3/B4 dataset (``bench-b3-<N>-*`` indices and template) is kept between runs on purpose;
this removes it, with any index, template or topic named ``bench-*`` a crashed run left.
"""

from __future__ import annotations

import contextlib

from bench.common import NAME_PREFIX, delete_topics, es_client, kafka_admin, log


def main() -> None:
    es = es_client()
    templates = es.indices.get_index_template(name=f"{NAME_PREFIX}*").get("index_templates", [])
    for template in templates:
        with contextlib.suppress(Exception):
            es.indices.delete_index_template(name=template["name"])
    indices = list(es.indices.get(index=f"{NAME_PREFIX}*", expand_wildcards="all"))
    for index in indices:
        with contextlib.suppress(Exception):
            es.indices.delete(index=index)
    topics = [t for t in kafka_admin().list_topics(timeout=10).topics if t.startswith(NAME_PREFIX)]
    delete_topics(topics)
    log(f"deleted {len(indices)} indices, {len(templates)} templates, {len(topics)} topics")


if __name__ == "__main__":
    main()
