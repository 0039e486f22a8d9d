"""Names and labels: validation, escaping, and label sets rendered once per series."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

from ._names import (
    ALLOW_UTF8,
    DOTS,
    LEGACY_LABEL_NAME,
    LEGACY_METRIC_NAME,
    UNDERSCORES,
    VALUES,
    escape_label_name,
    is_legacy_metric_name,
)
from .exceptions import LabelValidationException

METRIC_NAME_RE: Final = LEGACY_METRIC_NAME
LABEL_NAME_RE: Final = LEGACY_LABEL_NAME

LabelPairs = tuple[tuple[str, str], ...]

_legacy = os.environ.get("PROMETHEUS_LEGACY_NAME_VALIDATION", "").lower() in ("true", "1", "t")


def get_legacy_validation() -> bool:
    """Whether names are held to the classic character sets (Prometheus 2) instead of UTF-8.

    Off by default; on when the environment sets ``PROMETHEUS_LEGACY_NAME_VALIDATION``
    to ``true``/``1``/``t``, as for prometheus_client.
    """
    return _legacy


def enable_legacy_validation() -> None:
    """Accept only classic names from now on (``[a-zA-Z_:][a-zA-Z0-9_:]*`` for metrics)."""
    global _legacy
    _legacy = True


def disable_legacy_validation() -> None:
    """Accept any non-empty UTF-8 name from now on (the default)."""
    global _legacy
    _legacy = False


def check_metric_name(name: object) -> str:
    """Return `name` if it is a valid metric name, else raise `ValueError`.

    Any non-empty string is valid (Prometheus 3 takes UTF-8 names), unless legacy
    validation is on: then it must match ``[a-zA-Z_:][a-zA-Z0-9_:]*``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"invalid metric name {name!r}: it must be a non-empty string")
    if _legacy and not is_legacy_metric_name(name):
        raise ValueError(
            f"invalid metric name {name!r}: it must match [a-zA-Z_:][a-zA-Z0-9_:]* "
            "(legacy name validation is on)"
        )
    _check_text(name, "metric name")
    return name


def check_label_names(names: Iterable[object], reserved: Iterable[str] = ()) -> tuple[str, ...]:
    """Validate label names in declared order.

    Refused: non-strings, empty names, `__` prefixes, reserved names, repeats, and
    two names that a scraper's escaping would write alike (``a.b`` and ``a_b``).
    """
    if isinstance(names, str):
        raise LabelValidationException(
            f"label names must be a list of strings, not the string {names!r}"
        )
    reserved = set(reserved)
    seen: list[str] = []
    escaped: dict[tuple[str, str], str] = {}
    for name in names:
        if not isinstance(name, str) or not name:
            raise LabelValidationException(
                f"invalid label name {name!r}: it must be a non-empty string"
            )
        if _legacy and LABEL_NAME_RE.fullmatch(name) is None:
            raise LabelValidationException(
                f"invalid label name {name!r}: it must match [a-zA-Z_][a-zA-Z0-9_]* "
                "(legacy name validation is on)"
            )
        if name.startswith("__"):
            raise LabelValidationException(
                f"invalid label name {name!r}: names starting with '__' are reserved"
            )
        if escape_label_name(name, UNDERSCORES) == "__name__":
            raise LabelValidationException(
                f"invalid label name {name!r}: a scraper's underscore escaping writes it as "
                "'__name__', which holds the metric name"
            )
        _check_text(name, "label name", LabelValidationException)
        if name in reserved:
            raise LabelValidationException(f"label name {name!r} is reserved for this metric type")
        if name in seen:
            raise LabelValidationException(f"label name {name!r} is declared twice")
        for key in escaped_forms(name, escape_label_name):
            if key in escaped:
                raise LabelValidationException(
                    f"label names {escaped[key]!r} and {name!r} would both be exposed as "
                    f"{key[1]!r} to a scraper that asks for {key[0]} escaping"
                )
            escaped[key] = name
        seen.append(name)
    return tuple(seen)


def escaped_forms(name: str, escape: Callable[[str, str], str]) -> list[tuple[str, str]]:
    """``name`` under every escaping a scraper may ask for, as (escaping, escaped name)."""
    return [(e, escape(name, e)) for e in (UNDERSCORES, DOTS, VALUES)]


def _check_text(name: str, what: str, error: type[ValueError] = ValueError) -> None:
    if not name.isascii():
        try:
            name.encode()
        except UnicodeEncodeError:
            raise error(
                f"invalid {what} {name!r}: it is not valid Unicode (a lone surrogate)"
            ) from None


def label_value(name: str, value: object) -> str:
    """Return a label value as a string (numbers are converted, None is refused)."""
    if isinstance(value, str):
        if not value.isascii():
            try:
                value.encode()
            except UnicodeEncodeError:
                raise LabelValidationException(
                    f"label {name!r} has a value that is not valid Unicode (a lone surrogate)"
                ) from None
        # a str subclass (a StrEnum member) counts by its text, as a plain str would
        return value if value.__class__ is str else str.__str__(value)
    if value is None:
        raise LabelValidationException(f"label {name!r} has no value (None)")
    if isinstance(value, (int, float)):
        try:
            return str(value)
        except ValueError:  # an int of more digits than Python will print
            raise LabelValidationException(
                f"label {name!r} has a value too long to print ({int(value).bit_length()}-bit int)"
            ) from None
    raise LabelValidationException(
        f"label {name!r} has a value of type {type(value).__name__}; use a string"
    )


def escape_label_value(value: str) -> str:
    """Escape a label value for the text formats (backslash, double quote, newline)."""
    if "\\" in value or '"' in value or "\n" in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
    return value


_WRITTEN: dict[str, str] = {}  # label name -> as written in `LabelSet.text`


def written_label_name(name: str) -> str:
    """A label name as ``allow-utf-8`` writes it: classic names bare, others quoted."""
    found = _WRITTEN.get(name)
    if found is None:
        found = escape_label_name(name, ALLOW_UTF8)
        if len(_WRITTEN) < 10_000:  # label names are few; a flood is not cached
            _WRITTEN[name] = found
    return found


def render_labels(names: Sequence[str], values: Sequence[str]) -> str:
    """Render labels as `a="x",b="y"` (without braces), values escaped.

    A label name outside the classic set is quoted (``"my.label"="x"``), as a
    scraper that asks for ``escaping=allow-utf-8`` reads it; the encoders write
    it otherwise for the other escapings (see `has_quoted_names`).
    """
    # by index: zip() costs more than the rest for the one or two labels of most series
    return ",".join(
        [f'{written_label_name(names[i])}="{escape_label_value(v)}"' for i, v in enumerate(values)]
    )


def has_quoted_names(text: str) -> bool:
    """Whether a rendered label text has a quoted (non-classic) label name.

    Values have their double quotes escaped, so a raw ``"`` starts a text or
    follows a comma only where a quoted name begins.
    """
    return text[:1] == '"' or ',"' in text


class LabelSet:
    """The labels of one series, in canonical order, with their text rendered once.

    A label set keeps its label values and a reference to its names (a metric's
    series all share the metric's tuple of label names), not (name, value)
    pairs: one tuple per series instead of one per label plus one. Rendering at
    creation means that exposition of a series is a string concatenation,
    whatever its labels contain. The protobuf encoder keeps its encoding of the
    labels (names escaped with underscores, as every Prometheus that asks for
    protobuf wants them) in ``encoded`` the first time it needs it.

    Args:
        names: the label names, in canonical order.
        values: their values, as strings, in the same order.
    """

    __slots__ = ("encoded", "names", "text", "values")

    def __init__(self, names: tuple[str, ...], values: tuple[str, ...]) -> None:
        if len(names) != len(values):
            raise ValueError(f"{len(names)} label names but {len(values)} values")
        self.names: Final = names
        self.values: Final = values
        self.text: Final = render_labels(names, values)
        self.encoded: bytes | None = None

    @classmethod
    def from_pairs(cls, pairs: Iterable[tuple[str, str]]) -> LabelSet:
        """The label set of (name, value) pairs, in the order given."""
        pairs = tuple(pairs)
        return cls(tuple([n for n, _ in pairs]), tuple([v for _, v in pairs]))

    def plus(self, pair: tuple[str, str]) -> LabelSet:
        """These labels and one more (``pair``: name, value), last."""
        return LabelSet((*self.names, pair[0]), (*self.values, pair[1]))

    @property
    def pairs(self) -> LabelPairs:
        """The (name, value) pairs, made at each call (a series keeps only the values)."""
        return tuple(zip(self.names, self.values, strict=True))

    def as_dict(self) -> dict[str, str]:
        """The labels as a new dict."""
        return dict(zip(self.names, self.values, strict=True))

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LabelSet)
            and other.values == self.values
            and other.names == self.names
        )

    def __hash__(self) -> int:
        return hash(self.values)  # equal sets have equal values; names rarely tell them apart

    def __repr__(self) -> str:
        return f"LabelSet({self.text})"


EMPTY_LABELS: Final = LabelSet((), ())


def check_label_dict(
    given: Mapping[Any, object], allowed: Sequence[str], metric: str
) -> dict[str, str]:
    """Validate user-given labels against the declared names; return them as strings."""
    out: dict[str, str] = {}
    for name, value in given.items():
        if not isinstance(name, str) or name not in allowed:
            if not allowed:
                raise LabelValidationException(
                    f"metric {metric!r} declares no labels, but label {name!r} was given"
                )
            raise LabelValidationException(
                f"metric {metric!r} has no label {name!r}; its labels are {list(allowed)}"
            )
        out[name] = label_value(name, value)
    return out
