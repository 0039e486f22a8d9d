"""The examples in the public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

from apytheus.registry import REGISTRY, CollectorRegistry

MODULES = [
    "apytheus",
    "apytheus.aiohttp",
    "apytheus.backends",
    "apytheus.collectors",
    "apytheus.exposition",
    "apytheus.metrics",
    "apytheus.middleware",
    "apytheus.registry",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_of_module_pass(name: str) -> None:
    REGISTRY.set_registry(CollectorRegistry())
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    if name != "apytheus":
        assert result.attempted > 0, f"{name} has no docstring example"
