"""The compiled helpers (`schemas/_speedups.c`), when the build had a C compiler.

`compiled` is None otherwise, and the pure-Python definitions they copy do the same work
(slower): the search representation (`schemas.search`) and `_compact` (`schemas.document`).
"""

from __future__ import annotations

from types import ModuleType

compiled: ModuleType | None
try:
    from schemas import _speedups as compiled  # type: ignore[attr-defined, no-redef]
except ImportError:  # pragma: no cover - depends on the build
    compiled = None
