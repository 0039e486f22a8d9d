"""EXPOSE: a registry's parts as delimited protobuf ``MetricFamily`` messages, in chunks.

A registered metric is one message: its ``Metric`` entries are encoded
straight from its series, a chunk of series at a time, then framed once their
total length is known. A custom collector's families are encoded from their
samples. One `Encoder` serves the whole call (its memos die with it).
"""

from __future__ import annotations

from collections.abc import Iterator

from .._collect.read import Part
from .._samples import MetricFamily
from .chunks import CHUNK_SAMPLES, samples_per_series
from .formats._protometric import Encoder, exposed_name
from .formats._protoseries import series_encoder
from .formats.protobuf import encode_family, frame


def protobuf_chunks(parts: list[Part], escaping: str) -> Iterator[tuple[bytes, int]]:
    """Every part as a delimited message, with the samples each step encoded.

    The steps within one family yield ``b""`` (so a caller can yield to its event
    loop between them); the family's framed message comes with its last step.
    A step is a chunk of series with about `CHUNK_SAMPLES` samples, as the text
    formats build them.
    """
    enc = Encoder(escaping)
    for part in parts:
        if isinstance(part, MetricFamily):
            yield encode_family(enc, part), len(part.samples)
            continue
        family, name, series = part
        kind = family.kind
        header = enc.header(exposed_name(kind, name), family.documentation, kind, family.unit)
        encode = series_encoder(enc, family, name)
        per_series = samples_per_series(family, True)
        step = max(1, CHUNK_SAMPLES // per_series)
        body: list[bytes] = []
        for start in range(0, len(series), step):
            chunk = series[start : start + step]
            body.append(b"".join(encode(chunk)))
            yield b"", len(chunk) * per_series
        yield frame(header, body), 0
