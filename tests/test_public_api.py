"""Every contract name imports from its documented path; __all__ lists what exists."""

from __future__ import annotations

import importlib
import inspect

import pytest

CONTRACT = {
    "apytheus": [
        "Counter",
        "Gauge",
        "Histogram",
        "Summary",
        "Info",
        "Enum",
        "CustomCollector",
        "CollectorRegistry",
        "REGISTRY",
        "generate_metrics",
        "agenerate_metrics",
        "make_asgi_app",
        "make_wsgi_app",
        "serve",
        "start_http_server",
        "lifespan",
        "load_backend",
        "PROMETHEUS_CONTENT_TYPE",
        "OPENMETRICS_CONTENT_TYPE",
        "write_to_textfile",
        "push_to_gateway",
        "pushadd_to_gateway",
        "delete_from_gateway",
    ],
    "apytheus.metrics": [
        "Counter",
        "Gauge",
        "Histogram",
        "Summary",
        "Info",
        "Enum",
        "CustomCollector",
        "DEFAULT_BUCKETS",
    ],
    "apytheus.registry": [
        "CollectorRegistry",
        "CollectorRegistryProxy",
        "REGISTRY",
        "Registry",
        "RestrictedRegistry",
    ],
    "apytheus.exposition": [
        "generate_metrics",
        "agenerate_metrics",
        "render",
        "arender",
        "PROMETHEUS_CONTENT_TYPE",
        "OPENMETRICS_CONTENT_TYPE",
        "PROTOBUF_CONTENT_TYPE",
        "make_asgi_app",
        "make_wsgi_app",
        "start_http_server",
        "serve",
        "write_to_textfile",
        "push_to_gateway",
        "pushadd_to_gateway",
        "delete_from_gateway",
        "apush_to_gateway",
        "apushadd_to_gateway",
        "adelete_from_gateway",
        "default_handler",
        "basic_auth_handler",
        "adefault_handler",
        "abasic_auth_handler",
        "PushgatewayError",
    ],
    "apytheus.collectors": ["GCCollector", "PlatformCollector", "ProcessCollector"],
    "apytheus.validation": [
        "disable_legacy_validation",
        "enable_legacy_validation",
        "get_legacy_validation",
    ],
    "apytheus.backends": [
        "load_backend",
        "get_backend",
        "Backend",
        "InProcessBackend",
        "SingleProcessBackend",
        "MetricSpec",
        "SupportsAdopt",
        "SupportsClose",
        "SupportsHealth",
        "SupportsShare",
        "SupportsValuesOnly",
        "SupportsWorker",
    ],
    "apytheus.backends.base": ["SingleProcessBackend", "get_backend", "load_backend"],
    "apytheus.middleware": ["MetricsMiddleware", "PytheusMiddlewareASGI"],
    "apytheus.aiohttp": ["metrics_handler", "metrics_middleware"],
    "apytheus.django": ["RouteMiddleware"],
    "apytheus.celery": ["close_backend", "install"],
    "apytheus.experimental.compatibility": ["patch_client"],
    "apytheus.exceptions": [
        "PytheusException",
        "UnobservableMetricException",
        "LabelValidationException",
        "BucketException",
        "InvalidBackendClassException",
        "InvalidBackendConfigException",
        "DuplicateTimeseries",
    ],
}


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_contract_names_import_from_their_documented_module(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in CONTRACT[module] if not hasattr(mod, n)]
    assert missing == []


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_all_is_sorted_and_names_only_what_the_module_defines(module: str) -> None:
    mod = importlib.import_module(module)
    exported = list(mod.__all__)
    assert exported == sorted(exported)
    assert [n for n in exported if not hasattr(mod, n)] == []
    assert set(CONTRACT[module]) <= set(exported)


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_every_public_name_has_a_docstring(module: str) -> None:
    mod = importlib.import_module(module)
    undocumented = [
        n
        for n in mod.__all__
        if (inspect.isclass(getattr(mod, n)) or inspect.isfunction(getattr(mod, n)))
        and not inspect.getdoc(getattr(mod, n))
    ]
    assert undocumented == []


def test_content_types_are_the_standard_ones() -> None:
    import apytheus

    assert apytheus.PROMETHEUS_CONTENT_TYPE == "text/plain; version=0.0.4; charset=utf-8"
    assert apytheus.OPENMETRICS_CONTENT_TYPE == (
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    )


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_public_names_say_their_public_module(module: str) -> None:
    """Tracebacks and docs show where users import a name from, never a private module."""
    mod = importlib.import_module(module)
    private = [
        f"{n}: {getattr(mod, n).__module__}"
        for n in mod.__all__
        if (inspect.isclass(getattr(mod, n)) or inspect.isfunction(getattr(mod, n)))
        and "._" in getattr(mod, n).__module__
        and getattr(mod, n).__module__.startswith("apytheus")
    ]
    assert private == []
