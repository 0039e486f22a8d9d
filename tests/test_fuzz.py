"""Stateful fuzzing: random operations on random metrics against a plain-dict model.

Hypothesis creates a few counters, gauges and histograms (0 to 2 labels,
random buckets), then runs random sequences of ``labels()`` (positional,
keywords, dict, partial), ``inc``/``dec``/``set``/``observe`` with random
floats (infinities where the type allows them, NaN for ``set``), ``remove``,
``remove_by_labels``, ``clear``, and calls with bad values that must raise and
change nothing. After every step, both expositions are parsed with
prometheus_client's parsers (the oracle) and must hold exactly the model's
series, with the model's values.

Values: the model adds exactly (fractions). A float sum computed by adding
``n`` terms in order is within ``(n + 2) * 2**-52 * (|start| + sum(|terms|))`` of the
exact sum; counts and bucket counts must be exact. Only what was added since a
gauge's last ``set`` counts for its bound: a gauge that was set has forgotten
what came before. Infinities follow float rules: +Inf and -Inf together give NaN.

Histograms use non-negative bounds and observations here: OpenMetrics leaves out
the ``_sum`` of negative ones (``test_openmetrics_stays_valid_after_negative_observations``).
"""

from __future__ import annotations

import math
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

import anyio
import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics_text,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus_text
from prometheus_client.utils import floatToGoString
from redis_server import RedisServer

from apytheus import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Summary,
    agenerate_metrics,
    generate_metrics,
)
from apytheus.backends import InProcessBackend, load_backend
from apytheus.backends.redis import RedisBackend

ULP = Fraction(1, 2**52)
LABEL_NAMES = ("l0", "l1")

# Label values: a small pool (so that series meet again after remove and clear), the
# characters that need escaping, any unicode, and numbers (labeled by their text).
label_values = st.one_of(
    st.sampled_from(["a", "b", "", 'q"uote', "new\nline", "back\\slash", "ü", "😀", "1"]),
    st.text(st.characters(codec="utf-8"), max_size=6),
    st.integers(-3, 3),
)
label_tuples = st.tuples(label_values, label_values)
how = st.sampled_from(["positional", "keywords", "dict", "partial"])

big = 1e300  # sums of a few dozen such terms stay finite
non_negative = st.one_of(
    st.floats(min_value=0, max_value=big),
    st.sampled_from([0.0, 0.1, 1e20, 5e-324, math.inf]),
    st.integers(0, 2**70),
)
any_amount = st.one_of(
    st.floats(min_value=-big, max_value=big),
    st.sampled_from([-0.0, 0.1, -1e20, 1e20, math.inf, -math.inf]),
    st.integers(-(2**70), 2**70),
)
bounds = st.lists(
    st.floats(min_value=0, max_value=1e6).filter(lambda b: math.copysign(1, b) > 0),
    min_size=1,
    max_size=4,
    unique=True,
).map(sorted)
kinds = st.sampled_from(["counter", "gauge", "histogram"])
specs = st.lists(st.tuples(kinds, st.integers(0, 2), bounds), min_size=1, max_size=3)


@dataclass
class Sum:
    """A float that apytheus accumulates, tracked exactly, with the error it may have."""

    exact: Fraction = Fraction(0)
    magnitude: Fraction = Fraction(0)  # |start| + sum of |terms| since the last set
    terms: int = 0
    infinities: set[float] = field(default_factory=set)
    nan: bool = False

    def add(self, x: float) -> None:
        if math.isnan(x):
            self.nan = True
        elif math.isinf(x):
            self.infinities.add(x)
        else:
            self.exact += Fraction(x)
            self.magnitude += abs(Fraction(x))
            self.terms += 1

    def set(self, x: float) -> None:
        self.exact, self.magnitude, self.terms = Fraction(0), Fraction(0), 0
        self.infinities, self.nan = set(), False
        self.add(x)

    def matches(self, actual: float) -> bool:
        if self.nan or len(self.infinities) == 2:
            return math.isnan(actual)
        if self.infinities:
            return actual in self.infinities
        if not math.isfinite(actual):
            return False
        return abs(Fraction(actual) - self.exact) <= (self.terms + 2) * ULP * self.magnitude

    def __repr__(self) -> str:
        if self.nan or len(self.infinities) == 2:
            return "NaN"
        if self.infinities:
            return repr(next(iter(self.infinities)))
        return f"~{float(self.exact)!r}"


@dataclass
class HistogramModel:
    counts: list[int]  # per bucket, not cumulative; the last is +Inf
    sum: Sum = field(default_factory=Sum)


@dataclass
class MetricModel:
    kind: str
    name: str
    label_names: tuple[str, ...]
    bounds: tuple[float, ...]
    metric: Any
    series: dict[tuple[str, ...], Any] = field(default_factory=dict)

    def new_value(self) -> Any:
        if self.kind == "histogram":
            return HistogramModel([0] * (len(self.bounds) + 1))
        return Sum()

    def touch(self, values: tuple[str, ...]) -> Any:
        return self.series.setdefault(values, self.new_value())


Expected = dict[tuple[str, frozenset[tuple[str, str]]], Callable[[float], bool]]


def exact(value: float) -> Callable[[float], bool]:
    return lambda actual: actual == value


def expected_samples(models: list[MetricModel]) -> tuple[Expected, dict[tuple[Any, ...], str]]:
    """What both expositions must hold (``_created`` aside), and what the model says."""
    expected: Expected = {}
    described: dict[tuple[Any, ...], str] = {}
    for m in models:
        for values, value in m.series.items():
            labels = tuple(zip(m.label_names, values, strict=True))
            if m.kind == "histogram":
                cumulative = 0
                les = [*map(floatToGoString, m.bounds), "+Inf"]
                for le, n in zip(les, value.counts, strict=True):
                    cumulative += n
                    key = (f"{m.name}_bucket", frozenset((*labels, ("le", le))))
                    expected[key] = exact(float(cumulative))
                    described[key] = str(cumulative)
                expected[(f"{m.name}_count", frozenset(labels))] = exact(float(cumulative))
                expected[(f"{m.name}_sum", frozenset(labels))] = value.sum.matches
                described[(f"{m.name}_count", frozenset(labels))] = str(cumulative)
                described[(f"{m.name}_sum", frozenset(labels))] = repr(value.sum)
            else:
                name = f"{m.name}_total" if m.kind == "counter" else m.name
                expected[(name, frozenset(labels))] = value.matches
                described[(name, frozenset(labels))] = repr(value)
    return expected, described


def parsed_samples(
    text: str, openmetrics: bool
) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    parse = parse_openmetrics_text if openmetrics else parse_prometheus_text
    found: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    families = list(parse(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), f"a family is split in two: {names}"
    for family in families:
        for s in family.samples:
            if s.name.endswith("_created"):
                continue
            key = (s.name, frozenset(s.labels.items()))
            assert key not in found, f"sample {key} appears twice"
            found[key] = s.value
    return found


def refused(kind: str, bad: Any) -> list[str]:
    """The operations of ``kind`` that must refuse ``bad``."""
    ops = {"counter": ["inc"], "gauge": ["inc", "dec", "set"], "histogram": ["observe"]}[kind]
    if isinstance(bad, bool) or not isinstance(bad, (int, float)):
        return ops  # not a number
    if isinstance(bad, int) and abs(bad) >= 2**1024:
        return ops  # no float can hold it
    if math.isnan(bad):
        return [op for op in ops if op != "set"]  # a gauge may be set to NaN
    return ops if kind == "counter" else []  # only counters refuse negative numbers


class MetricsMachine(RuleBasedStateMachine):
    """Random metrics and operations; the exposition must always match the model."""

    def __init__(self) -> None:
        super().__init__()
        self.registry = CollectorRegistry()
        self.models: list[MetricModel] = []
        self.prefix = ""  # of metric names

    @initialize(specs=specs)
    def create_metrics(self, specs: list[tuple[str, int, list[float]]]) -> None:
        for i, (kind, n_labels, buckets) in enumerate(specs):
            name = f"{self.prefix}m{i}"
            names = LABEL_NAMES[:n_labels]
            metric: Any
            if kind == "counter":
                metric = Counter(name, f"Metric {i}", names, registry=self.registry)
            elif kind == "gauge":
                metric = Gauge(name, f"Metric {i}", names, registry=self.registry)
            else:
                metric = Histogram(
                    name, f"Metric {i}", names, registry=self.registry, buckets=buckets
                )
            model = MetricModel(kind, name, names, tuple(buckets), metric)
            if not names:
                model.touch(())  # an unlabeled metric has its series from the start
            self.models.append(model)

    # -- helpers ----------------------------------------------------------------
    def pick(self, kind: str | None, index: int, labeled: bool | None = None) -> MetricModel:
        found = [
            m
            for m in self.models
            if (kind is None or m.kind == kind)
            and (labeled is None or bool(m.label_names) == labeled)
        ]
        return found[index % len(found)]

    def has(self, kind: str | None = None, labeled: bool | None = None) -> bool:
        return any(
            (kind is None or m.kind == kind) and (labeled is None or bool(m.label_names) == labeled)
            for m in self.models
        )

    @staticmethod
    def child(m: MetricModel, raw: tuple[Any, Any], via: str) -> tuple[Any, tuple[str, ...]]:
        """The handle for these label values, reached one of the ways users reach it."""
        n = len(m.label_names)
        values = raw[:n]
        key = tuple(str(v) for v in values)
        if n == 0:
            return m.metric, key
        kwargs = dict(zip(m.label_names, values, strict=True))
        if via == "positional":
            return m.metric.labels(*values), key
        if via == "keywords":
            return m.metric.labels(**kwargs), key
        if via == "dict":
            return m.metric.labels(kwargs), key
        handle = m.metric  # partial: one label at a time, last label first
        for name in reversed(m.label_names):
            handle = handle.labels(**{name: kwargs[name]})
        return handle, key

    # -- rules ------------------------------------------------------------------
    @precondition(lambda self: self.has("counter"))
    @rule(index=st.integers(0, 9), raw=label_tuples, via=how, amount=non_negative)
    def counter_inc(self, index: int, raw: tuple[Any, Any], via: str, amount: float) -> None:
        m = self.pick("counter", index)
        handle, key = self.child(m, raw, via)
        handle.inc(amount)
        m.touch(key).add(float(amount))

    @precondition(lambda self: self.has("gauge"))
    @rule(
        index=st.integers(0, 9),
        raw=label_tuples,
        via=how,
        op=st.sampled_from(["inc", "dec", "set"]),
        amount=any_amount,
    )
    def gauge_op(self, index: int, raw: tuple[Any, Any], via: str, op: str, amount: float) -> None:
        m = self.pick("gauge", index)
        handle, key = self.child(m, raw, via)
        getattr(handle, op)(amount)
        value = m.touch(key)
        if op == "set":
            value.set(float(amount))
        else:
            value.add(float(amount) if op == "inc" else -float(amount))

    @precondition(lambda self: self.has("gauge"))
    @rule(index=st.integers(0, 9), raw=label_tuples, via=how)
    def gauge_set_nan(self, index: int, raw: tuple[Any, Any], via: str) -> None:
        m = self.pick("gauge", index)
        handle, key = self.child(m, raw, via)
        handle.set(math.nan)
        m.touch(key).set(math.nan)

    @precondition(lambda self: self.has("histogram"))
    @rule(index=st.integers(0, 9), raw=label_tuples, via=how, value=non_negative)
    def observe(self, index: int, raw: tuple[Any, Any], via: str, value: float) -> None:
        m = self.pick("histogram", index)
        handle, key = self.child(m, raw, via)
        handle.observe(value)
        model = m.touch(key)
        v = float(value)
        model.counts[sum(1 for b in m.bounds if b < v)] += 1  # the first bound >= v
        model.sum.add(v)

    @rule(index=st.integers(0, 9), raw=label_tuples, via=how)
    def labels_only(self, index: int, raw: tuple[Any, Any], via: str) -> None:
        m = self.pick(None, index)
        _, key = self.child(m, raw, via)
        m.touch(key)  # a child exists (at zero) as soon as labels() returns it

    @precondition(lambda self: self.has(labeled=True))
    @rule(index=st.integers(0, 9), raw=label_tuples, keywords=st.booleans())
    def remove(self, index: int, raw: tuple[Any, Any], keywords: bool) -> None:
        m = self.pick(None, index, labeled=True)
        values = raw[: len(m.label_names)]
        if keywords:
            m.metric.remove(**dict(zip(m.label_names, values, strict=True)))
        else:
            m.metric.remove(*values)
        m.series.pop(tuple(str(v) for v in values), None)

    @precondition(lambda self: self.has(labeled=True))
    @rule(index=st.integers(0, 9), value=label_values, position=st.integers(0, 1))
    def remove_by_labels(self, index: int, value: Any, position: int) -> None:
        m = self.pick(None, index, labeled=True)
        position %= len(m.label_names)
        m.metric.remove_by_labels({m.label_names[position]: value})
        for key in [k for k in m.series if k[position] == str(value)]:
            del m.series[key]

    @rule(index=st.integers(0, 9))
    def clear(self, index: int) -> None:
        m = self.pick(None, index)
        m.metric.clear()
        if m.label_names:
            m.series.clear()

    @rule(
        index=st.integers(0, 9),
        raw=label_tuples,
        via=how,
        bad=st.sampled_from([-1, -0.5, -math.inf, math.nan, "1", None, True, [1], 10**400]),
    )
    def bad_value(self, index: int, raw: tuple[Any, Any], via: str, bad: Any) -> None:
        """Bad values raise and record nothing (the invariant checks the nothing)."""
        m = self.pick(None, index)
        handle, key = self.child(m, raw, via)
        m.touch(key)  # labels() itself was fine: the child exists
        for op in refused(m.kind, bad):
            with pytest.raises((TypeError, ValueError)):
                getattr(handle, op)(bad)

    @precondition(lambda self: self.has(labeled=True))
    @rule(index=st.integers(0, 9), raw=label_tuples, extra=st.sampled_from(["l9", "le", 1]))
    def bad_labels(self, index: int, raw: tuple[Any, Any], extra: Any) -> None:
        """Unknown label names and wrong counts raise and create no series."""
        m = self.pick(None, index, labeled=True)
        values = raw[: len(m.label_names)]
        with pytest.raises(ValueError):
            m.metric.labels(*values, "one too many")
        with pytest.raises(ValueError):
            m.metric.labels({**dict(zip(m.label_names, values, strict=True)), extra: "x"})

    # -- the invariant -------------------------------------------------------------
    @invariant()
    def exposition_matches_the_model(self) -> None:
        if not self.models:
            return
        expected, described = expected_samples(self.models)
        for openmetrics in (False, True):
            rendered = generate_metrics(self.registry, openmetrics=openmetrics)
            found = parsed_samples(rendered, openmetrics)
            assert set(found) == set(expected), (
                f"series differ ({'openmetrics' if openmetrics else 'text'}): "
                f"only rendered {set(found) - set(expected)}, "
                f"only in the model {set(expected) - set(found)}\n{rendered}"
            )
            wrong = {
                key: (found[key], described[key])
                for key, ok in expected.items()
                if not ok(found[key])
            }
            assert not wrong, f"(rendered, model) differ: {wrong}\n{rendered}"

    @rule()
    def async_exposition_is_the_same(self) -> None:
        """The async collector renders what the sync one does (a rule: an event loop is slow)."""
        for openmetrics in (False, True):
            sync = generate_metrics(self.registry, openmetrics=openmetrics)
            assert anyio.run(agenerate_metrics, self.registry, openmetrics) == sync


EXAMPLES = int(os.environ.get("APYTHEUS_FUZZ_EXAMPLES", "100"))  # 2000 for a longer hunt
# pytest-timeout's limit grows with the hunt (an example takes up to about 0.2 s here)
hunt = pytest.mark.timeout(60 + EXAMPLES // 5)

MetricsMachine.TestCase.settings = settings(
    max_examples=EXAMPLES,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow],
    # no explain phase: its line tracing makes every run several times slower (Python < 3.12)
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
TestMetricsMachine = hunt(MetricsMachine.TestCase)


class RedisMachine(MetricsMachine):
    """The machine with every series in a real Redis, under a key prefix of its own."""

    url: ClassVar[str] = ""

    def __init__(self) -> None:
        unique = uuid.uuid4().hex[:12]
        config = {"url": self.url, "key_prefix": f"fuzz-{unique}", "flush_interval": 3600}
        backend = load_backend(RedisBackend, config)
        assert isinstance(backend, RedisBackend)
        self.backend = backend
        super().__init__()
        # hypothesis may keep earlier examples' machines alive, and their metrics follow
        # the backend switch: names of its own keep this example's series apart
        self.prefix = f"x{unique}_"

    def teardown(self) -> None:
        self.backend.close(flush=False)
        load_backend(InProcessBackend)


@hunt
def test_the_machine_on_the_redis_backend(redis_server: RedisServer) -> None:
    """Each exposition flushes the deltas to Redis and reads every series back (removals
    are deletes there, infinities stored totals, gauges one value per worker)."""
    RedisMachine.url = redis_server.url
    run_state_machine_as_test(
        RedisMachine,
        settings=settings(
            MetricsMachine.TestCase.settings,
            max_examples=max(10, MetricsMachine.TestCase.settings.max_examples // 4),
        ),
    )


@pytest.mark.parametrize(
    ("before", "value", "after", "expected"),
    [
        (4.0, 0.0, 0.1, 0.1),
        (1e20, 0.0, 1.0, 1.0),
        (math.inf, 5.0, 0.0, 5.0),
        (-1e300, 2.0, 1.5, 3.5),
    ],
)
def test_a_gauge_that_was_set_forgets_what_was_added_before(
    before: float, value: float, after: float, expected: float
) -> None:
    """What the machine found first (kept so that it is checked on every run)."""
    registry = CollectorRegistry()
    g = Gauge("g", "G", registry=registry)
    g.inc(before)
    g.set(value)
    g.inc(after)
    assert registry.get_sample_value("g") == expected


@pytest.mark.parametrize(
    ("buckets", "values", "text_sum"),
    [
        ([1.0], [-5.0], "-5.0"),
        ([1.0], [-math.inf], "-Inf"),
        ([1.0], [math.inf, -math.inf], "NaN"),
        ([-1.0, 1.0], [0.5], "0.5"),
        (None, [-5.0], "-5.0"),
        (None, [math.inf, -math.inf], "NaN"),
    ],
    ids=[
        "negative-sum",
        "minus-inf-sum",
        "nan-sum",
        "negative-bucket",
        "summary-negative-sum",
        "summary-nan-sum",
    ],
)
def test_openmetrics_stays_valid_after_negative_observations(
    buckets: list[float] | None, values: list[float], text_sum: str
) -> None:
    """Histograms and summaries take negative values (as prometheus_client's do), but
    OpenMetrics allows no negative or NaN ``_sum``, no ``_sum`` at all with negative
    buckets, and no histogram ``_count`` without ``_sum``: those go, the rest stays."""
    registry = CollectorRegistry()
    kind = "summary" if buckets is None else "histogram"
    metric = (
        Summary("m", "M", registry=registry)
        if buckets is None
        else Histogram("m", "M", buckets=buckets, registry=registry)
    )
    for v in values:
        metric.observe(v)
    assert f"m_sum {text_sum}\n" in generate_metrics(registry)
    found = parsed_samples(generate_metrics(registry, openmetrics=True), openmetrics=True)
    assert ("m_sum", frozenset()) not in found
    assert (("m_count", frozenset()) in found) == (kind == "summary")
    if kind == "histogram":
        assert found[("m_bucket", frozenset({("le", "+Inf")}))] == len(values)


def test_openmetrics_sum_comes_back_when_it_is_a_counter_again() -> None:
    registry = CollectorRegistry()
    h = Histogram("h", "H", buckets=[1.0], registry=registry)
    h.observe(-2)
    assert "h_sum" not in generate_metrics(registry, openmetrics=True)
    h.observe(3)
    found = parsed_samples(generate_metrics(registry, openmetrics=True), openmetrics=True)
    assert found[("h_sum", frozenset())] == 1.0
    assert found[("h_count", frozenset())] == 2.0
