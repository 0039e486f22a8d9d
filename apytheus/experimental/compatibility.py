"""Run code written for prometheus_client on apytheus, unchanged (``patch_client``).

`patch_client` replaces prometheus_client's metric classes, registry and
exposition functions with apytheus' ones, wrapped to take prometheus_client's
signatures. Code that imports them afterwards creates apytheus metrics: they
record into the selected backend (the Redis backend too), and
``generate_latest()`` renders apytheus' registry. Custom collectors that yield
prometheus_client's ``GaugeMetricFamily`` and the like keep working, since
apytheus' registries expose such families.

This is experimental, as in pytheus: see the docs page "prometheus_client
compatibility" for what is not covered.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from .. import collectors, validation
from ..exceptions import DuplicateTimeseries
from ..exposition import PROMETHEUS_CONTENT_TYPE
from ..registry import REGISTRY, Registry
from . import _client_exposition as expose
from . import _client_metrics as make

__all__ = ["patch_client", "unpatch_client"]

# Where prometheus_client's users import from; a name is replaced in each of these
# modules that has it (so `from prometheus_client.core import REGISTRY` is patched too).
_SUBMODULES = ("core", "registry", "metrics", "exposition", "asgi", "multiprocess")

# What patch_client puts in place of prometheus_client's names.
_REPLACEMENTS: dict[str, object] = {
    "CONTENT_TYPE_LATEST": PROMETHEUS_CONTENT_TYPE,
    "CollectorRegistry": make.CollectorRegistry,
    "Counter": make.Counter,
    "DuplicateTimeseries": DuplicateTimeseries,
    "Enum": make.Enum,
    "GCCollector": collectors.GCCollector,
    "Gauge": make.Gauge,
    "Histogram": make.Histogram,
    "Info": make.Info,
    "MultiProcessCollector": expose.MultiProcessCollector,
    "PlatformCollector": collectors.PlatformCollector,
    "ProcessCollector": collectors.ProcessCollector,
    "REGISTRY": REGISTRY,
    "Summary": make.Summary,
    "delete_from_gateway": expose.delete_from_gateway,
    "generate_latest": expose.generate_latest,
    "make_asgi_app": expose.make_asgi_app,
    "make_wsgi_app": expose.make_wsgi_app,
    "mark_process_dead": expose.mark_process_dead,
    "push_to_gateway": expose.push_to_gateway,
    "pushadd_to_gateway": expose.pushadd_to_gateway,
    "start_http_server": expose.start_http_server,
    "start_wsgi_server": expose.start_http_server,
    "write_to_textfile": expose.write_to_textfile,
}

# Modules where the same names mean something else: their own replacements.
_OTHER_MODULES: dict[str, dict[str, object]] = {
    # prometheus_client's HTTP integrations (MetricsHandler, aiohttp, Twisted, Django)
    # look this one up when asked for OpenMetrics
    "openmetrics.exposition": {"generate_latest": expose.generate_latest_openmetrics},
    # UTF-8 names, or the classic ones only (also PROMETHEUS_LEGACY_NAME_VALIDATION)
    "validation": {
        "disable_legacy_validation": validation.disable_legacy_validation,
        "enable_legacy_validation": validation.enable_legacy_validation,
        "get_legacy_validation": validation.get_legacy_validation,
    },
}

# prometheus_client's instances of its default collectors, and apytheus' classes for them.
_DEFAULT_COLLECTORS: dict[str, type[Any]] = {
    "PROCESS_COLLECTOR": collectors.ProcessCollector,
    "PLATFORM_COLLECTOR": collectors.PlatformCollector,
    "GC_COLLECTOR": collectors.GCCollector,
}


@dataclass
class _Patch:
    """What one `patch_client` call changed, for `unpatch_client` to undo."""

    replaced: list[tuple[ModuleType, str, object, object]] = field(default_factory=list)
    registered: list[tuple[Registry, object]] = field(default_factory=list)
    stand_ins: list[object] = field(default_factory=list)


_lock = threading.Lock()
_patches: dict[str, _Patch] = {}


def _modules(client: ModuleType) -> list[tuple[ModuleType, dict[str, object]]]:
    """``client`` and those of its submodules users import names from, with what to replace."""
    tables = {"": _REPLACEMENTS, **dict.fromkeys(_SUBMODULES, _REPLACEMENTS), **_OTHER_MODULES}
    found = [(_submodule(client, name), table) for name, table in tables.items()]
    return [(module, table) for module, table in found if module is not None]


def _submodule(client: ModuleType, name: str) -> ModuleType | None:
    """``client.<name>`` (``client`` for ""), imported; None if it has none."""
    if not name:
        return client
    try:  # `multiprocess` is not imported by `import prometheus_client`
        return importlib.import_module(f"{client.__name__}.{name}")
    except ImportError:  # not a package, or a version without that module
        return None


def patch_client(client: ModuleType, *, default_collectors: bool = True) -> None:
    """Make ``client`` (the ``prometheus_client`` module) create and expose apytheus metrics.

    In ``client`` and in its submodules ``core``, ``registry``, ``metrics``,
    ``exposition``, ``asgi`` and ``multiprocess``, each of these names that
    the module has is replaced: ``Counter``, ``Gauge``, ``Histogram``,
    ``Summary``, ``Info``, ``Enum``, ``CollectorRegistry``, ``REGISTRY``,
    ``generate_latest`` (returns bytes), ``CONTENT_TYPE_LATEST``, ``DuplicateTimeseries``,
    ``start_http_server``, ``start_wsgi_server``, ``make_wsgi_app``,
    ``make_asgi_app``, ``write_to_textfile``, ``push_to_gateway``,
    ``pushadd_to_gateway``, ``delete_from_gateway``, ``ProcessCollector``,
    ``PlatformCollector``, ``GCCollector``, ``MultiProcessCollector`` and
    ``mark_process_dead``; so is ``generate_latest`` of
    ``openmetrics.exposition``, by one that renders OpenMetrics. The metrics
    take prometheus_client's arguments (``labelnames``, ``namespace``,
    ``subsystem``, ``unit``, ``documentation``, ``multiprocess_mode``,
    ``buckets``, ``states``) and are apytheus metrics.

    Call it first, before the modules that import prometheus_client names are
    imported: a name imported earlier keeps prometheus_client's object. A
    second call does nothing. It does no I/O.

    Args:
        client: the imported ``prometheus_client`` module.
        default_collectors: register apytheus' `ProcessCollector`,
            `PlatformCollector` and `GCCollector` in apytheus' default
            registry (unless it has them), as prometheus_client's default
            registry has its own, and make ``PROCESS_COLLECTOR``,
            ``PLATFORM_COLLECTOR`` and ``GC_COLLECTOR`` name them (so
            ``REGISTRY.unregister(PROCESS_COLLECTOR)`` works).

    Examples:
        >>> import prometheus_client
        >>> from apytheus.experimental.compatibility import patch_client, unpatch_client
        >>> patch_client(prometheus_client, default_collectors=False)
        >>> from prometheus_client import CollectorRegistry, Counter, generate_latest
        >>> registry = CollectorRegistry()
        >>> c = Counter("requests", "Requests", ["method"], namespace="shop", registry=registry)
        >>> c.labels("GET").inc()
        >>> print(generate_latest(registry).decode(), end="")
        # HELP shop_requests_total Requests
        # TYPE shop_requests_total counter
        shop_requests_total{method="GET"} 1.0
        >>> unpatch_client(prometheus_client)
    """
    with _lock:
        if client.__name__ in _patches:
            return
        patch = _Patch()
        modules = _modules(client)
        for module, _ in modules:
            original = vars(module).get("REGISTRY")
            if original is not None and original is not REGISTRY:
                if all(original is not r for r in patch.stand_ins):
                    patch.stand_ins.append(original)
        defaults = _register_defaults(patch) if default_collectors else {}
        for module, table in modules:
            for name, replacement in {**table, **defaults}.items():
                if name in vars(module):
                    patch.replaced.append((module, name, vars(module)[name], replacement))
                    setattr(module, name, replacement)
        make.CLIENT_DEFAULTS.extend(patch.stand_ins)
        _patches[client.__name__] = patch


def _register_defaults(patch: _Patch) -> dict[str, object]:
    """Register apytheus' default collectors unless there; return the names for them."""
    target = REGISTRY.registry
    held = target.collect()
    names: dict[str, object] = {}
    for name, cls in _DEFAULT_COLLECTORS.items():
        found = next((c for c in held if isinstance(c, cls)), None)
        if found is None:
            found = cls(registry=None)
            target.register(found)
            patch.registered.append((target, found))
        names[name] = found
    return names


def unpatch_client(client: ModuleType) -> None:
    """Undo `patch_client`: put prometheus_client's own names back (for tests).

    Only the names still holding what `patch_client` put there are restored,
    and the default collectors it registered are unregistered. Metrics created
    while patched stay apytheus metrics. Unpatching an unpatched module does
    nothing.

    Args:
        client: the module given to `patch_client`.

    Examples:
        >>> import prometheus_client
        >>> from apytheus.experimental.compatibility import patch_client, unpatch_client
        >>> original = prometheus_client.Counter
        >>> patch_client(prometheus_client)
        >>> prometheus_client.Counter is original
        False
        >>> unpatch_client(prometheus_client)
        >>> prometheus_client.Counter is original
        True
    """
    with _lock:
        patch = _patches.pop(client.__name__, None)
        if patch is None:
            return
        for module, name, original, replacement in reversed(patch.replaced):
            if vars(module).get(name) is replacement:
                setattr(module, name, original)
        for registry, collector in patch.registered:
            with contextlib.suppress(KeyError):  # the app unregistered it already
                registry.unregister(collector)
        for stand_in in patch.stand_ins:
            make.CLIENT_DEFAULTS.remove(stand_in)
