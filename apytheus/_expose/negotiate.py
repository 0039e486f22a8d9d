"""EXPOSE: what a request asks for: the format and escaping (``Accept``), gzip, ``name[]``.

Prometheus lists the formats it takes in one ``Accept`` header, each with a
q-value; the best one apytheus writes wins (`negotiate`). What Prometheus sends:

* 2.x: OpenMetrics 1.0.0, then 0.0.1, then text 0.0.4, then ``*/*``;
* 2.x and 3.x with native histograms on (the feature flag; from 3.8
  ``scrape_native_histograms``): protobuf first;
* 3.x: the same, asking for UTF-8 names (``escaping=allow-utf-8``) in
  OpenMetrics 1.0.0 and text 1.0.0.

An unknown or malformed header gets text 0.0.4, never an error.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple
from urllib.parse import parse_qs

from .._names import ESCAPINGS, UNDERSCORES
from .formats import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE
from .formats.text import CONTENT_TYPE_1_0_0


class Format(NamedTuple):
    """A negotiated format: ``kind`` (text, openmetrics or protobuf), its Content-Type, escaping."""

    kind: str
    content_type: str
    escaping: str = UNDERSCORES


TEXT = Format("text", PROMETHEUS_CONTENT_TYPE)
"""Text 0.0.4: what a request without (or with an unusable) ``Accept`` header gets."""


def negotiate(accept: str | None, protobuf: bool = True) -> Format:
    """The best format ``accept`` allows, by q-value (protobuf only if ``protobuf``).

    Among equal q-values the more specific media range wins, then the first listed.
    """
    offers: list[tuple[float, int, int, Format]] = []
    for index, item in enumerate(str(accept or "")[:4096].split(",")):
        media, _, rest = item.partition(";")
        params: dict[str, str] = {}
        for param in rest.split(";"):
            key, eq, val = param.partition("=")
            if eq:
                params[key.strip().lower()] = val.strip().strip('"')
        try:
            q = float(params.get("q", "1"))
        except ValueError:
            continue  # a malformed weight: not an offer
        if not 0 < q <= 1:
            continue
        media = media.strip().lower()
        found = _format(media, params, protobuf)
        if found is not None:
            offers.append((-q, media.count("*"), index, found))
    return min(offers)[3] if offers else TEXT


def _format(media: str, params: dict[str, str], protobuf: bool) -> Format | None:
    escaping = params.get("escaping", UNDERSCORES)
    if escaping not in ESCAPINGS:
        escaping = UNDERSCORES
    # the Content-Type says which escaping was used when the request named one
    echo = f"; escaping={escaping}" if "escaping" in params else ""
    version = params.get("version")
    if media == "application/vnd.google.protobuf":
        if (
            protobuf
            and params.get("proto") == "io.prometheus.client.MetricFamily"
            and params.get("encoding") == "delimited"
        ):
            return Format("protobuf", PROTOBUF_CONTENT_TYPE, escaping)
        return None
    if media in ("application/openmetrics-text", "application/*"):
        if version in (None, "0.0.1", "1.0.0"):
            return Format("openmetrics", OPENMETRICS_CONTENT_TYPE + echo, escaping)
        return None
    if media == "text/plain" and version == "1.0.0":
        return Format("text", CONTENT_TYPE_1_0_0 + echo, escaping)
    if (media == "text/plain" and version in (None, "0.0.4")) or media in ("text/*", "*/*"):
        return TEXT
    return None


def choose_format(accept: str | None) -> tuple[bool, str]:
    """Return (openmetrics?, content type) for an ``Accept`` header.

    Deprecated: use `negotiate` (or `apytheus.exposition.render`), which also
    weighs q-values and knows protobuf and escaping.
    """
    warnings.warn(
        "choose_format() is deprecated: use apytheus.exposition.render(), which negotiates "
        "by q-value, protobuf and escaping",
        DeprecationWarning,
        stacklevel=2,
    )
    found = negotiate(accept, protobuf=False)  # its callers write underscore-escaped text
    if found.kind == "openmetrics":
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
