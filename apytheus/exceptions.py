"""Exceptions raised by apytheus (the names pytheus uses, so its code keeps working).

Every exception that reports bad input also derives from `ValueError` (or
`TypeError`), so code written for prometheus_client, which raises those, keeps
catching them.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailable",
    "BucketException",
    "DuplicateTimeseries",
    "InvalidBackendClassException",
    "InvalidBackendConfigException",
    "LabelValidationException",
    "PytheusException",
    "UnobservableMetricException",
]


class PytheusException(Exception):
    """Base class of every apytheus exception."""


class UnobservableMetricException(PytheusException, ValueError):
    """A metric was observed before all its required labels had values."""


class InvalidBackendClassException(PytheusException, ValueError):
    """The configured backend class cannot be imported or is not a backend."""


class InvalidBackendConfigException(PytheusException, ValueError):
    """The backend configuration cannot be read or is not valid."""


class LabelValidationException(PytheusException, ValueError):
    """Label names or values do not match what the metric declares."""


class BucketException(PytheusException, ValueError):
    """Histogram buckets are not a sorted sequence of numbers."""


class BackendUnavailable(PytheusException):
    """The backend's store cannot be reached, so metrics cannot be collected now."""


class DuplicateTimeseries(PytheusException, ValueError):
    """A metric (or collector) exposes a name that its registry already exposes.

    prometheus_client raises an exception of the same name, which
    `apytheus.experimental.compatibility.patch_client` replaces by this one.

    Attributes:
        duplicates: the clashing names.
    """

    def __init__(self, duplicates: set[str], message: str | None = None) -> None:
        self.duplicates = set(duplicates)
        super().__init__(message or f"Duplicated timeseries in CollectorRegistry: {duplicates}")
