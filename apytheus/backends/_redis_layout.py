"""STORE: the Redis layout in one place: keys, hash fields and their separators.

Keys carry a hash tag per metric (``{prefix|name}:v``), so everything a flush
script touches lives in one Redis Cluster slot. A key prefix has no ``|``, ``{``
or ``}``; a UTF-8 metric name may, so a name with any of ``%|{}`` has those
characters percent-encoded (`key_name`): every (prefix, name) pair gets its own
keys, and the hash tag still spans the whole ``{…}``. Classic names never
change (they have none of these characters).

* ``{p|m}:v``   values. Counter / histogram fields hold totals over all
  workers (added in the flush script); gauge, info and enum fields are per worker.
  A native histogram adds a field per populated bucket (``n`` and its key).
* ``{p|m}:seq`` the last batch sequence number applied, per worker.
* ``{p|m}:c``   creation time per series (``HSETNX``), for OpenMetrics.
* ``{p|m}:t``   time of the last write per gauge field (``mostrecent``).
* ``{p|m}:x``   the newest exemplar per counter series or histogram bucket, from
  any worker (fields as in ``:v``; see ``_exemplars.py``).
* ``{p|m}:o:<worker>`` the series of a gauge-like metric that a worker wrote
  (a set), so that what it leaves is found without a scan when it stops or dies.
* ``{p}:m:<worker>`` the metrics a worker wrote, each with whether its newest
  value stays when the worker stops: how pruning finds all a dead worker left.
* ``{p}:workers`` a sorted set of workers; the score is when each one's
  heartbeat expires, as the worker itself set it.
* ``{p}:marks``  per worker, the batch number of its last confirmed write:
  how a worker notices that Redis lost (or rolled back) what it sent.

A field names a series by its label values as compact JSON; a histogram's
bucket, or a gauge's worker, follows after a tab (JSON never has a raw one).
"""

from __future__ import annotations

import json

from .._labels import LabelSet
from .._samples import floatstr

SEP = "\t"  # between a series' field and its part (bucket, sum, worker): JSON never has a raw tab


def series_field(labels: LabelSet) -> str:
    """The hash field naming a series: its label values as compact JSON, in declared order.

    Made whenever a batch needs it (a buffer keeps none), so values that JSON
    writes as they are (printable, no ``"`` or backslash) are joined directly:
    the same text as ``json.dumps``, several times faster.
    """
    values = labels.values
    if values and all(v.isprintable() and '"' not in v and "\\" not in v for v in values):
        return '["' + '","'.join(values) + '"]'
    return json.dumps(values, ensure_ascii=False, separators=(",", ":"))


def native_part(key: int) -> str:
    """The field suffix of a native histogram's bucket (its key: see `apytheus._native`)."""
    return f"n{key}"


def bucket_parts(bounds: tuple[float, ...]) -> list[str]:
    """Field suffixes of a histogram's buckets (``le`` as exposed), then ``sum``."""
    return [floatstr(b) for b in bounds] + ["+Inf", "sum"]


def key_name(name: str) -> str:
    """A metric name as its keys carry it: as it is, or with ``%|{}`` percent-encoded.

    One to one: names left as they are have no ``%``; encoded ones always have one.
    """
    if not any(c in name for c in "%|{}"):
        return name
    return "".join(f"%{ord(c):02X}" if c in "%|{}" else c for c in name)


def metric_keys(key_prefix: str, name: str) -> tuple[str, str, str, str]:
    """The seq, values, created and times keys of a metric."""
    tag = f"{{{key_prefix}|{key_name(name)}}}"
    return f"{tag}:seq", f"{tag}:v", f"{tag}:c", f"{tag}:t"


def exemplars_key(key_prefix: str, name: str) -> str:
    """The hash of a metric's newest exemplars (one per series, or per bucket)."""
    return f"{{{key_prefix}|{key_name(name)}}}:x"


def owned_key(key_prefix: str, name: str, worker: str) -> str:
    """The set of a gauge-like metric's series that ``worker`` wrote."""
    return f"{{{key_prefix}|{key_name(name)}}}:o:{worker}"


def wrote_key(key_prefix: str, worker: str) -> str:
    """The hash of the metrics ``worker`` wrote (name: '1' if its newest value stays)."""
    return f"{{{key_prefix}}}:m:{worker}"


def workers_key(key_prefix: str) -> str:
    """The sorted set of workers and when their heartbeats expire."""
    return f"{{{key_prefix}}}:workers"


def marks_key(key_prefix: str) -> str:
    """The hash of each worker's last confirmed batch number."""
    return f"{{{key_prefix}}}:marks"
