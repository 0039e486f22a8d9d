"""The examples in the public docstrings run and print what they claim.

Public names live in private modules (``apytheus._expose.render``…) and are
re-exported, so the examples are found through each public module's
``__all__``, not through the module a name is defined in.
"""

from __future__ import annotations

import doctest
import importlib
import inspect

import pytest

from apytheus.registry import REGISTRY, CollectorRegistry

MODULES = [
    "apytheus",
    "apytheus.aiohttp",
    "apytheus.backends",
    "apytheus.celery",
    "apytheus.collectors",
    "apytheus.django",
    "apytheus.exposition",
    "apytheus.metrics",
    "apytheus.middleware",
    "apytheus.registry",
    "apytheus.validation",
]


def examples(name: str) -> list[doctest.DocTest]:
    """The doctests of a module's docstring and of every name in its ``__all__``."""
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    found = finder.find(module, name, module=module)  # the module and what it defines
    for public in getattr(module, "__all__", []):
        obj = getattr(module, public)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found += finder.find(obj, f"{name}.{public}", module=False, globs=vars(module))
    unique = {(t.name, t.lineno, t.filename): t for t in found if t.examples}
    return list(unique.values())


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_of_module_pass(name: str) -> None:
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    tests = examples(name)
    for test in tests:
        REGISTRY.set_registry(CollectorRegistry())
        runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0
    if name != "apytheus":
        assert result.attempted > 0, f"{name} has no docstring example"
