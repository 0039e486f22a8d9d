"""BASE: make re-exported names say where users import them from (as anyio and httpx do)."""

from __future__ import annotations

from typing import Any


def publish(namespace: dict[str, Any]) -> None:
    """Set ``__module__`` of every name in the module's ``__all__`` that lives in a private module.

    Tracebacks, reprs and docs then show ``apytheus.exposition.generate_metrics``,
    never ``apytheus._expose.render.generate_metrics``.
    """
    for name in namespace["__all__"]:
        obj = namespace[name]
        module = getattr(obj, "__module__", None)
        if isinstance(module, str) and "._" in module and module.startswith("apytheus."):
            try:
                obj.__module__ = namespace["__name__"]
            except (AttributeError, TypeError):  # a constant or a builtin: nothing to set
                pass
