"""pytheus' module path for the backend API (``pytheus.backends.base``).

pytheus' README selects the in-process backend with
``PYTHEUS_BACKEND_CLASS=pytheus.backends.base.SingleProcessBackend``; after
renaming the import, ``apytheus.backends.base.SingleProcessBackend`` names the
same class as `apytheus.backends.InProcessBackend`. New code imports from
`apytheus.backends`.
"""

from __future__ import annotations

from typing import Any

from . import Backend as Backend
from . import InProcessBackend as InProcessBackend
from . import SingleProcessBackend as SingleProcessBackend
from . import get_backend as _get_backend
from . import load_backend as load_backend

__all__ = [
    "Backend",
    "InProcessBackend",
    "SingleProcessBackend",
    "get_backend",
    "get_backend_class",
    "load_backend",
]


def get_backend(metric: Any = None, histogram_bucket: str | None = None) -> Backend:
    """The backend this process records into (pytheus' arguments are accepted, unused)."""
    return _get_backend()


def get_backend_class() -> type[Any]:
    """The class of the backend this process records into."""
    return type(_get_backend())
