"""Backends: where recorded values are kept, flushed and collected from.

`load_backend` selects the backend for the whole process (every metric,
including those created before the call). With no arguments it reads
``APYTHEUS_BACKEND_CLASS`` (a dotted path) and ``APYTHEUS_BACKEND_CONFIG`` (a
JSON file path or inline JSON); pytheus' ``PYTHEUS_*`` names work too. It
runs at ``import apytheus`` and does no I/O: connections open on first use.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._labels import LabelSet as LabelSet
from .._public import publish
from .._samples import Exemplar as Exemplar
from ..exceptions import InvalidBackendClassException, InvalidBackendConfigException
from ._current import current as _current_backend
from ._current import switch as _switch
from ._inprocess import InProcessBackend as InProcessBackend
from ._inprocess import SingleProcessBackend as SingleProcessBackend
from ._protocol import Backend as Backend
from ._protocol import MetricSpec as MetricSpec
from ._protocol import Series as Series
from ._protocol import SupportsAdopt as SupportsAdopt
from ._protocol import SupportsClose as SupportsClose
from ._protocol import SupportsHealth as SupportsHealth
from ._protocol import SupportsShare as SupportsShare
from ._protocol import SupportsValuesOnly as SupportsValuesOnly
from ._protocol import SupportsWorker as SupportsWorker
from ._series import HistogramSeries as HistogramSeries
from ._series import InfoSeries as InfoSeries
from ._series import ScalarSeries as ScalarSeries

__all__ = [
    "Backend",
    "Exemplar",
    "HistogramSeries",
    "InProcessBackend",
    "InfoSeries",
    "LabelSet",
    "MetricSpec",
    "ScalarSeries",
    "Series",
    "SingleProcessBackend",
    "SupportsAdopt",
    "SupportsClose",
    "SupportsHealth",
    "SupportsShare",
    "SupportsValuesOnly",
    "SupportsWorker",
    "get_backend",
    "load_backend",
]


BackendConfig = Mapping[str, Any]

# what a class must have to be a backend: the Protocol's methods, read from it
_PROTOCOL_METHODS = tuple(n for n, v in vars(Backend).items() if callable(v) and n[0] != "_")


def get_backend() -> Backend:
    """Return the backend this process records into."""
    return _current_backend()


def load_backend(
    backend_class: type[Any] | str | None = None,
    backend_config: BackendConfig | str | None = None,
) -> Backend:
    """Select the backend for this process.

    Args:
        backend_class: a backend class or its dotted path; defaults to
            ``$APYTHEUS_BACKEND_CLASS`` (or ``$PYTHEUS_BACKEND_CLASS``), else
            `InProcessBackend`.
        backend_config: a mapping, a JSON file path or inline JSON; defaults to
            ``$APYTHEUS_BACKEND_CONFIG`` (or ``$PYTHEUS_BACKEND_CONFIG``).

    Returns:
        The new backend, already in use by every metric.

    Raises:
        InvalidBackendClassException: the class cannot be imported or is not a backend.
        InvalidBackendConfigException: the configuration is not a JSON object.

    Examples:
        >>> from apytheus.backends import InProcessBackend, load_backend
        >>> load_backend(InProcessBackend)
        InProcessBackend()
    """
    cls = backend_class or _env("BACKEND_CLASS") or InProcessBackend
    if isinstance(cls, str):
        cls = _import_class(cls)
    if not isinstance(cls, type):
        raise InvalidBackendClassException(
            f"backend_class must be a class or a dotted path, not {cls!r}"
        )
    missing = [m for m in _PROTOCOL_METHODS if not callable(getattr(cls, m, None))]
    if missing:
        raise InvalidBackendClassException(
            f"{cls.__name__} is not a backend: it lacks {', '.join(missing)} "
            "(see apytheus.backends.Backend)"
        )
    config = _read_config(backend_config if backend_config is not None else _env("BACKEND_CONFIG"))
    try:
        backend = cls(config)
    except Exception as exc:  # whatever the class raises, it is about its config
        raise InvalidBackendConfigException(f"{cls.__name__} rejected its config: {exc}") from exc
    if not isinstance(backend, Backend):
        raise InvalidBackendClassException(
            f"{cls.__name__} does not implement the apytheus.backends.Backend protocol"
        )
    _switch(backend)
    return backend


def _env(suffix: str) -> str | None:
    return os.environ.get(f"APYTHEUS_{suffix}") or os.environ.get(f"PYTHEUS_{suffix}") or None


def _import_class(path: str) -> type[Any]:
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise InvalidBackendClassException(f"cannot import backend class {path!r}: {exc}") from exc
    if not isinstance(cls, type):
        raise InvalidBackendClassException(f"{path!r} is not a class")
    return cls


def _read_config(raw: BackendConfig | str | None) -> dict[str, Any]:
    if raw is None:
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    if not isinstance(raw, str):
        raise InvalidBackendConfigException(
            f"backend config must be a dict, inline JSON or a file path, not {raw!r}"
        )
    text = raw.strip()
    if not text.startswith("{"):
        try:
            text = Path(text).read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidBackendConfigException(
                f"backend config {raw!r} is neither inline JSON nor a readable file: {exc}"
            ) from exc
    try:
        config = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBackendConfigException(f"backend config is not valid JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise InvalidBackendConfigException("backend config must be a JSON object")
    return config


publish(globals())
