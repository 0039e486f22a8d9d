"""RECORD: exemplar labels from the active OpenTelemetry span (``opentelemetry-api``, optional).

The ids are W3C hex, named as the OpenMetrics 2.0 draft names them: ``trace_id``
(32 hex digits) and ``span_id`` (16). Only a valid, sampled span gives an
exemplar: an unsampled trace is nowhere to be found behind it.
"""

from __future__ import annotations

from typing import Any

from ._labels import LabelSet

_trace: Any = None  # the opentelemetry.trace module, once imported


def require_otel() -> None:
    """Import ``opentelemetry-api``, or raise a clear `ImportError` (at the call site)."""
    global _trace
    if _trace is None:
        try:
            from opentelemetry import trace
        except ImportError as exc:
            raise ImportError(
                "exemplars from OpenTelemetry need opentelemetry-api: pip install 'apytheus[otel]'"
            ) from exc
        _trace = trace


def span_labels() -> LabelSet | None:
    """The current sampled span's ids as exemplar labels (valid as they are), else None."""
    if _trace is None:
        require_otel()
    context = _trace.get_current_span().get_span_context()
    if not context.is_valid or not context.trace_flags.sampled:
        return None
    # sorted by name, as a checked exemplar's labels are; 63 characters, under the 128
    span_id, trace_id = format(context.span_id, "016x"), format(context.trace_id, "032x")
    return LabelSet(("span_id", "trace_id"), (span_id, trace_id))


def span_exemplar(scope: object = None) -> dict[str, str] | None:
    """``trace_id`` and ``span_id`` of the current span if it is sampled, else None.

    Takes (and ignores) an ASGI scope, so that it serves as a middleware's ``exemplar``.
    """
    labels = span_labels()
    return None if labels is None else labels.as_dict()
