"""Which names are valid: any non-empty UTF-8 string (Prometheus 3), or classic ones only.

The names of prometheus_client's ``prometheus_client.validation``. Legacy
validation is off by default, on when the environment sets
``PROMETHEUS_LEGACY_NAME_VALIDATION`` to ``true``, ``1`` or ``t``.

Examples:
    >>> from apytheus import CollectorRegistry, Counter
    >>> from apytheus.validation import disable_legacy_validation, enable_legacy_validation
    >>> enable_legacy_validation()
    >>> try:
    ...     Counter("http.requests", "Requests", registry=CollectorRegistry())
    ... except ValueError as exc:
    ...     print(str(exc).split(":")[0])
    invalid metric name 'http.requests'
    >>> disable_legacy_validation()
"""

from __future__ import annotations

from ._labels import disable_legacy_validation as disable_legacy_validation
from ._labels import enable_legacy_validation as enable_legacy_validation
from ._labels import get_legacy_validation as get_legacy_validation
from ._public import publish

__all__ = ["disable_legacy_validation", "enable_legacy_validation", "get_legacy_validation"]

publish(globals())
