"""Names and labels: validation, escaping, and label sets rendered once per series."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from .exceptions import LabelValidationException

METRIC_NAME_RE: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME_RE: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

LabelPairs = tuple[tuple[str, str], ...]


def check_metric_name(name: object) -> str:
    """Return `name` if it is a valid metric name, else raise `ValueError`."""
    if not isinstance(name, str) or METRIC_NAME_RE.fullmatch(name) is None:
        raise ValueError(f"invalid metric name {name!r}: it must match [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


def check_label_names(names: Iterable[object], reserved: Iterable[str] = ()) -> tuple[str, ...]:
    """Validate label names in declared order; reject `__` prefixes, reserved names, repeats."""
    if isinstance(names, str):
        raise LabelValidationException(
            f"label names must be a list of strings, not the string {names!r}"
        )
    reserved = set(reserved)
    seen: list[str] = []
    for name in names:
        if not isinstance(name, str) or LABEL_NAME_RE.fullmatch(name) is None:
            raise LabelValidationException(
                f"invalid label name {name!r}: it must match [a-zA-Z_][a-zA-Z0-9_]*"
            )
        if name.startswith("__"):
            raise LabelValidationException(
                f"invalid label name {name!r}: names starting with '__' are reserved"
            )
        if name in reserved:
            raise LabelValidationException(f"label name {name!r} is reserved for this metric type")
        if name in seen:
            raise LabelValidationException(f"label name {name!r} is declared twice")
        seen.append(name)
    return tuple(seen)


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


def render_pairs(pairs: Iterable[tuple[str, str]]) -> str:
    """Render label pairs as `a="x",b="y"` (without braces), values escaped."""
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in pairs)


class LabelSet:
    """The labels of one series, in canonical order, with their text rendered once.

    Rendering at creation means that exposition of a series is a string
    concatenation, whatever its labels contain.
    """

    __slots__ = ("pairs", "text")

    def __init__(self, pairs: LabelPairs) -> None:
        self.pairs: Final = pairs
        self.text: Final = render_pairs(pairs)

    def as_dict(self) -> dict[str, str]:
        """The labels as a new dict."""
        return dict(self.pairs)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LabelSet) and other.pairs == self.pairs

    def __hash__(self) -> int:
        return hash(self.pairs)

    def __repr__(self) -> str:
        return f"LabelSet({self.text})"


EMPTY_LABELS: Final = LabelSet(())


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
