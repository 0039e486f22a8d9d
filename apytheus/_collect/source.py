"""COLLECT: what a scrape reads from: a registry, seen through the proxy or a filter.

`behind` finds the registry behind the `REGISTRY` proxy or a restricted view
(errors and health are kept per registry, not per view); `RestrictedRegistry`
is the view that ``restricted_registry(names)`` returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol


class Source(Protocol):
    """What collection needs of a registry: its prefix and what it holds."""

    @property
    def prefix(self) -> str | None:
        """Prepended, with ``_``, to the name of every metric it exposes."""
        ...

    def collect(self) -> list[Any]:
        """The registered metric families and custom collectors, in order."""
        ...


def behind(registry: object) -> Any:
    """The registry itself, behind the `REGISTRY` proxy or restricted views."""
    for _ in range(8):  # a proxy of a view of a proxy… never a loop
        inner = getattr(registry, "registry", None)
        if inner is None:
            break
        registry = inner
    return registry


class RestrictedRegistry:
    """A registry seen through a filter: only metrics exposing one of ``names``.

    Made by `CollectorRegistry.restricted_registry`. Rendering it renders the
    registry behind it, filtered as ``generate_metrics(registry, names=...)``
    would; registering goes to that registry.
    """

    __module__ = "apytheus.registry"

    def __init__(self, names: Iterable[str], registry: Any) -> None:
        if isinstance(names, str):
            names = (names,)
        self.names = frozenset(names)
        self.registry = registry

    @property
    def prefix(self) -> str | None:
        """The prefix of the registry behind it."""
        prefix: str | None = self.registry.prefix
        return prefix

    def register(self, collector: Any) -> None:
        """Register on the registry behind it."""
        self.registry.register(collector)

    def unregister(self, collector: Any) -> None:
        """Unregister from the registry behind it."""
        self.registry.unregister(collector)

    def collect(self) -> list[Any]:
        """What the registry behind it holds (the filter applies when rendering)."""
        found: list[Any] = self.registry.collect()
        return found

    def __repr__(self) -> str:
        return f"RestrictedRegistry({sorted(self.names)!r}, {self.registry!r})"


def restrict(
    registry: Source, names: frozenset[str] | None
) -> tuple[Source, frozenset[str] | None]:
    """A restricted view becomes its registry and a name filter (both filters apply)."""
    while isinstance(registry, RestrictedRegistry):
        names = registry.names if names is None else names & registry.names
        registry = registry.registry
    return registry, names
