"""EXPOSE: what a request asks for: the format (``Accept``), gzip, the ``name[]`` filter."""

from __future__ import annotations

from urllib.parse import parse_qs

from .formats import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE


def choose_format(accept: str | None) -> tuple[bool, str]:
    """Return (openmetrics?, content type) for an ``Accept`` header."""
    if accept and "application/openmetrics-text" in accept:
        return True, OPENMETRICS_CONTENT_TYPE
    return False, PROMETHEUS_CONTENT_TYPE


def query_names(query: str) -> list[str] | None:
    """The ``name[]`` values of a query string (prometheus_client's filter), or None."""
    if "name" not in query:
        return None
    try:
        found = parse_qs(query, keep_blank_values=False, max_num_fields=1000).get("name[]")
    except ValueError:  # more fields than any real filter has: no filter, never a 500
        return None
    return found or None


def gzip_ok(accept_encoding: str | None) -> bool:
    """Whether ``Accept-Encoding`` takes gzip: listed (or ``*``) with a q-value above 0."""
    if not accept_encoding:
        return False
    star = False
    for item in str(accept_encoding).split(","):
        coding, *params = item.split(";")
        q = 1.0
        for param in params:
            key, _, number = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(number)
                except ValueError:
                    q = 0.0  # a malformed weight: do not guess
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            return q > 0
        if coding == "*":
            star = q > 0
    return star
