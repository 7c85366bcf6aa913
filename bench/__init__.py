"""Benchmarks B1-B4 of QUALITY.md: ``python -m bench.run [--quick]`` (``make bench``)."""
