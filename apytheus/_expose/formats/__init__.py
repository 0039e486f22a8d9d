"""EXPOSE: encoders from metric families to the exposition formats (pure functions)."""

from __future__ import annotations

from .openmetrics import CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .openmetrics import encode as encode_openmetrics
from .protobuf import CONTENT_TYPE as PROTOBUF_CONTENT_TYPE
from .text import CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from .text import encode as encode_text

__all__ = [
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "encode_openmetrics",
    "encode_text",
]
