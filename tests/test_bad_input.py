"""What bad input gets, entry point by entry point (DESIGN.md, "What bad input gets").

One table: every row is a call with bad input on a public entry point, the
exception it must raise, and words its message must contain so that it names
the problem (the bad value, the label or the option). After every row the
exposition of a registry holding metrics of every type, with values and an
exemplar, must be exactly what it was before (text 0.0.4 and OpenMetrics;
``_created`` lines are compared too: they only change if a series is dropped
and created again) and the process' backend must still be the same object.

Long label values: apytheus sets no limit. A label value of 1 MB is recorded,
rendered in both formats and served by the ASGI app, and prometheus_client's
parsers read it back intact (see the tests at the end). That is the behaviour
kept here: "absurd" is left to the cardinality cap and to the user.
"""

from __future__ import annotations

import math
import types
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as parse_openmetrics_text,
)
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus_text

from apytheus import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_metrics,
    make_asgi_app,
)
from apytheus.backends import Backend, InProcessBackend, get_backend, load_backend
from apytheus.backends.redis import RedisBackend
from apytheus.exceptions import (
    BucketException,
    InvalidBackendClassException,
    InvalidBackendConfigException,
    LabelValidationException,
    UnobservableMetricException,
)

MEGABYTE = 1 << 20
HUGE_INT = 10**5000  # more digits than int -> str allows by default (4300)
LARGE_INT = 10**400  # an int too large for a float, but printable

Errors = type[BaseException] | tuple[type[BaseException], ...]


def show(value: object) -> str:
    """A short test id for a value (huge ints have no repr)."""
    if isinstance(value, int) and value.bit_length() > 64:
        return f"int-of-{len(str(value)) if value.bit_length() < 10_000 else 'many'}-digits"
    if isinstance(value, Iterator):
        return "iterator"  # not consumed here: the row needs its items
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


@dataclass(frozen=True)
class Env:
    """A registry with a metric of every type, each holding values."""

    registry: CollectorRegistry
    tmp: Path
    requests: Counter  # labels method, path
    jobs: Counter  # no labels
    temperature: Gauge  # no labels
    latency: Histogram  # label route
    payload: Summary  # no labels
    build: Info  # no labels
    deploy: Info  # label env
    state: Enum  # states starting, running

    @property
    def get(self) -> Counter:
        """The requests counter's child GET / (holds an exemplar)."""
        return self.requests.labels(method="GET", path="/")

    @property
    def home(self) -> Histogram:
        """The latency histogram's child for route /."""
        return self.latency.labels(route="/")


@pytest.fixture
def env(registry: CollectorRegistry, tmp_path: Path) -> Env:
    requests = Counter("requests", "Requests", ["method", "path"], registry=registry)
    requests.labels(method="GET", path="/").inc(3, exemplar={"trace_id": "abc"})
    requests.labels("POST", 'a "quoted"\npath').inc(0.5)
    jobs = Counter("jobs", "Jobs", registry=registry)
    jobs.inc(7)
    temperature = Gauge("temperature", "Temperature", registry=registry)
    temperature.set(21.5)
    latency = Histogram(
        "latency_seconds", "Latency", ["route"], registry=registry, buckets=[0.1, 1]
    )
    latency.labels(route="/").observe(0.05, exemplar={"trace_id": "def"})
    latency.labels(route="/").observe(3)
    payload = Summary("payload_bytes", "Payload", registry=registry)
    payload.observe(512)
    build = Info("build", "Build", registry=registry)
    build.info({"version": "1.2.3"})
    deploy = Info("deploy", "Deploy", ["env"], registry=registry)
    deploy.labels(env="prod").info({"region": "eu"})
    state = Enum("state", "State", states=["starting", "running"], registry=registry)
    state.state("running")
    return Env(
        registry, tmp_path, requests, jobs, temperature, latency, payload, build, deploy, state
    )


@pytest.fixture(autouse=True)
def same_backend() -> Iterator[Backend]:
    """Give back the in-process backend if a row switched the process' backend anyway."""
    before = get_backend()
    yield before
    stray = get_backend()
    if stray is not before:
        if isinstance(stray, RedisBackend):
            stray.close(flush=False)
        load_backend(InProcessBackend)


def parse(text: str, openmetrics: bool) -> list[Metric]:
    """The families of ``text`` as prometheus_client's parsers (the oracle) read them."""
    parser: Callable[[str], Iterable[Metric]] = (
        parse_openmetrics_text if openmetrics else parse_prometheus_text
    )
    return list(parser(text))


def exposition(registry: CollectorRegistry) -> tuple[str, str]:
    return generate_metrics(registry), generate_metrics(registry, openmetrics=True)


@dataclass(frozen=True)
class Bad:
    """A call with bad input, what it must raise, and what the message must name."""

    id: str
    call: Callable[[Env], object]
    error: Errors
    says: tuple[str, ...]


ROWS: list[Bad] = []

# the loops below that build rows share these names: one type each
value: object
error: Errors
config: object


def bad(id: str, call: Callable[[Env], object], error: Errors, *says: str) -> None:
    ROWS.append(Bad(id, call, error, says))


def bind(call: Callable[..., object], *values: Any) -> Callable[[Env], object]:
    """``call`` with the values of this row after the environment (loop variables, bound)."""
    return lambda env: call(env, *values)


# -- constructors -------------------------------------------------------------------


def enum(*args: Any, states: Any = ("a", "b"), **options: Any) -> Enum:
    return Enum(*args, **{"states": states, **options})


KINDS: dict[str, Callable[..., object]] = {
    "Counter": Counter,
    "Gauge": Gauge,
    "Histogram": Histogram,
    "Summary": Summary,
    "Info": Info,
    "Enum": enum,
}


def make(kind: str, name: Any, labels: Any = None, **options: Any) -> Callable[[Env], object]:
    return lambda e: KINDS[kind](name, "Doc", labels, registry=e.registry, **options)


for kind in KINDS:
    # any non-empty UTF-8 string is a name (Prometheus 3); a lone surrogate is not UTF-8
    for name in ("", None, 3, b"jobs", "bad\ud800"):
        bad(f"{kind}-name-{name!r}", make(kind, name), ValueError, repr(name))
    bad(
        f"{kind}-description-None",
        bind(lambda e, k: KINDS[k]("fresh", None, registry=e.registry), kind),
        TypeError,
        "description",
    )
    for labels, says in (
        (["__secret"], "'__secret'"),
        ([""], "''"),
        (["bad\ud800"], "surrogate"),
        (["a.b", "a_b"], "'a.b' and 'a_b'"),  # both `a_b` to a scraper asking for underscores
        (["a-b", "a_b"], "'a-b' and 'a_b'"),
        ([1], "1"),
        ([None], "None"),
        (["a", "a"], "'a'"),
        ("method", "'method'"),  # a string, not a list of names
    ):
        bad(
            f"{kind}-labels-{show(labels)}",
            make(kind, "fresh", labels),
            LabelValidationException,
            says,
        )
    bad(
        f"{kind}-default-label-undeclared",
        make(kind, "fresh", ["a"], default_labels={"nope": "x"}),
        LabelValidationException,
        "'nope'",
    )
    bad(
        f"{kind}-default-label-None",
        make(kind, "fresh", ["a"], default_labels={"a": None}),
        LabelValidationException,
        "'a'",
        "None",
    )
    bad(
        f"{kind}-default-labels-not-a-mapping",
        make(kind, "fresh", ["a"], default_labels=["a"]),
        (TypeError, LabelValidationException),
        "default_labels",
    )
    # every value on Counter; on the others, one value refused today and one that is not
    for max_series in (0, -1, True, "many", math.nan, 1.5) if kind == "Counter" else (0, "many"):
        bad(
            f"{kind}-max_series-{show(max_series)}",
            make(kind, "fresh", max_series=max_series),
            (TypeError, ValueError),
            "max_series",
        )
    bad(
        f"{kind}-registry-not-a-registry",
        bind(lambda e, k: KINDS[k]("fresh", "Doc", registry="not a registry"), kind),
        TypeError,
        "registry",
    )

bad("Histogram-reserved-le", make("Histogram", "h", ["le"]), LabelValidationException, "'le'")
bad(
    "Summary-reserved-quantile",
    make("Summary", "s", ["quantile"]),
    LabelValidationException,
    "'quantile'",
)
bad("Enum-label-named-like-it", make("Enum", "fsm", ["fsm"]), LabelValidationException, "'fsm'")
for mode in ("all", "liveall"):
    bad(
        f"Gauge-{mode}-reserves-worker",
        make("Gauge", "g", ["worker"], multiprocess_mode=mode),
        LabelValidationException,
        "'worker'",
    )
for bad_mode in ("average", "SUM", "", None, 1):
    bad(
        f"Gauge-multiprocess_mode-{show(bad_mode)}",
        make("Gauge", "g", multiprocess_mode=bad_mode),
        ValueError,
        repr(bad_mode),
    )

# duplicate registration: any sample name already exposed in the registry
for kind, name, says in (
    ("Counter", "requests", "requests"),
    ("Counter", "requests_total", "requests"),
    ("Gauge", "requests_total", "requests_total"),
    ("Gauge", "jobs_created", "jobs_created"),
    ("Gauge", "latency_seconds_bucket", "latency_seconds_bucket"),
    ("Summary", "latency_seconds", "latency_seconds"),
    ("Histogram", "payload_bytes", "payload_bytes"),
    ("Gauge", "temperature", "temperature"),
    ("Info", "build", "build"),
    ("Gauge", "build_info", "build_info"),
    ("Enum", "state", "state"),
):
    bad(f"duplicate-{kind}-{name}", make(kind, name), ValueError, "duplicate", says)

for buckets, says in (
    ([2, 1], "[2, 1]"),
    ([1, 1], "[1, 1]"),
    ([1, math.nan], "NaN"),
    ([math.inf, 1], "inf"),
    ([-math.inf, 1], "Inf"),
    (["a"], "'a'"),
    ([None], "None"),
    ([True, 2], "bool"),
    ("abc", "sequence"),
    (iter([2, 1]), "[2, 1]"),  # an iterator: the message must still show the bounds
    (3, "buckets"),
):
    bad(
        f"Histogram-buckets-{show(buckets)}",
        make("Histogram", "h", buckets=buckets),
        BucketException,
        says,
    )
bad("Histogram-bucket-too-large", make("Histogram", "h", buckets=[LARGE_INT]), ValueError, "large")

for states, says in (
    ([], "states"),
    ("ab", "states"),
    (None, "states"),
    ([1, 2], "states"),
    (["a", None], "states"),
    (["a", "a"], "'a'"),
):
    bad(f"Enum-states-{show(states)}", make("Enum", "e", states=states), ValueError, says)
bad("Enum-name-with-colon", make("Enum", "a:b"), ValueError, "'a:b'", "':'")
bad("Enum-states-generator-repeats", make("Enum", "e", states=iter("aa")), ValueError, "'a'")

# -- labels() and remove() ------------------------------------------------------------

for value, says in (
    (None, "None"),
    (["GET"], "list"),
    (b"GET", "bytes"),
    ({"GET"}, "set"),
    (object(), "object"),
    ("\ud800", "surrogate"),
    (HUGE_INT, "'method'"),
):
    bad(
        f"labels-value-{type(value).__name__}",
        bind(lambda e, v: e.requests.labels(method=v, path="/"), value),
        LabelValidationException,
        says,
    )
    bad(
        f"labels-positional-value-{type(value).__name__}",
        bind(lambda e, v: e.requests.labels(v, "/"), value),
        LabelValidationException,
        says,
    )
bad(
    "labels-unknown-name", lambda e: e.requests.labels(nope="x"), LabelValidationException, "'nope'"
)
bad(
    "labels-unknown-and-known",
    lambda e: e.requests.labels(method="GET", path="/", nope="x"),
    LabelValidationException,
    "'nope'",
)
bad(
    "labels-unknown-in-dict",
    lambda e: e.requests.labels({"method": "GET", "nope": "x"}),
    LabelValidationException,
    "'nope'",
)
bad("labels-name-not-str", lambda e: e.requests.labels({1: "x"}), LabelValidationException, "1")
bad(
    "labels-too-few-positional",
    lambda e: e.requests.labels("GET"),
    LabelValidationException,
    "expects 2",
)
bad(
    "labels-too-many-positional",
    lambda e: e.requests.labels("GET", "/", "x"),
    LabelValidationException,
    "got 3",
)
bad(
    "labels-dict-and-kwargs",
    lambda e: e.requests.labels({"method": "GET"}, path="/"),
    LabelValidationException,
    "not a mix",
)
bad(
    "labels-on-unlabeled-metric",
    lambda e: e.jobs.labels(a="x"),
    LabelValidationException,
    "declares no labels",
)
bad(
    "labels-positional-on-unlabeled",
    lambda e: e.temperature.labels("x"),
    LabelValidationException,
    "expects 0",
)
bad(
    "labels-incomplete-then-inc",
    lambda e: e.requests.labels(method="GET").inc(),
    UnobservableMetricException,
    "'path'",
)
bad("remove-unknown-label", lambda e: e.requests.remove(nope="x"), LabelValidationException, "nope")
bad(
    "remove-incomplete",
    lambda e: e.requests.remove(method="GET"),
    LabelValidationException,
    "every label",
)
bad("remove-positional-count", lambda e: e.requests.remove("GET"), LabelValidationException, "2")
bad("remove-value-None", lambda e: e.requests.remove("GET", None), LabelValidationException, "None")
bad(
    "remove-on-unlabeled-metric",  # as prometheus_client: there is no labeled series to remove
    lambda e: e.jobs.remove(),
    ValueError,
    "jobs",
)
bad(
    "remove_by_labels-not-a-mapping",
    lambda e: e.requests.remove_by_labels("method"),  # type: ignore[arg-type]
    TypeError,
    "dict",
)
bad(
    "remove_by_labels-unknown",
    lambda e: e.requests.remove_by_labels({"nope": "x"}),
    LabelValidationException,
    "'nope'",
)

# -- inc / dec / set / observe ---------------------------------------------------------

NOT_NUMBERS: tuple[tuple[object, str], ...] = (
    ("1", "str"),
    (None, "None"),
    (True, "bool"),
    ([1], "list"),
    (Decimal("1"), "Decimal"),
    (1j, "complex"),
)
for amount, says in (
    *NOT_NUMBERS,
    (-1, "-1"),
    (-0.5, "-0.5"),
    (-math.inf, "-inf"),
    (math.nan, "nan"),
    (LARGE_INT, "too large"),
    (HUGE_INT, "too large"),
):
    errors: Errors = ValueError if isinstance(amount, (int, float)) else TypeError
    if amount is True:
        errors = TypeError
    bad(f"Counter.inc-{show(amount)}", bind(lambda e, a: e.get.inc(a), amount), errors, says)
    bad(
        f"Counter.inc-unlabeled-{show(amount)}",
        bind(lambda e, a: e.jobs.inc(a), amount),
        errors,
        says,
    )
    if amount is not None:  # value=None means "not given": inc() adds 1
        bad(
            f"Counter.inc-value=-{show(amount)}",
            bind(lambda e, a: e.jobs.inc(value=a), amount),
            errors,
            says,
        )
    bad(
        f"Counter.inc-with-exemplar-{show(amount)}",
        bind(lambda e, a: e.get.inc(a, exemplar={"trace_id": "new"}), amount),
        errors,
        says,
    )

# amount and pytheus' value= together: which one was meant?
bad("Counter.inc-amount-and-value", lambda e: e.jobs.inc(2, value=3), TypeError, "not both")
bad(
    "Counter.inc-amount-and-value-exemplar",
    lambda e: e.get.inc(2, {"t": "x"}, value=3),
    TypeError,
    "not both",
)
for op in ("inc", "dec"):
    bad(
        f"Gauge.{op}-amount-and-value",
        bind(lambda e, op: getattr(e.temperature, op)(2, value=3), op),
        TypeError,
        "not both",
    )

for amount, says in (
    *NOT_NUMBERS,
    (math.nan, "NaN"),
    (LARGE_INT, "too large"),
    (HUGE_INT, "large"),
):
    errors = TypeError if not isinstance(amount, (int, float)) or amount is True else ValueError
    for op in ("inc", "dec", "set"):
        if op == "set" and amount is math.nan:
            continue  # a gauge may be set to NaN
        bad(
            f"Gauge.{op}-{show(amount)}",
            bind(lambda e, a, op: getattr(e.temperature, op)(a), amount, op),
            errors,
            says,
        )
    bad(
        f"Histogram.observe-{show(amount)}",
        bind(lambda e, a: e.home.observe(a), amount),
        errors,
        says,
    )
    bad(
        f"Summary.observe-{show(amount)}",
        bind(lambda e, a: e.payload.observe(a), amount),
        errors,
        says,
    )

bad(
    "Gauge.set_function-not-callable",
    lambda e: e.temperature.set_function(3),  # type: ignore[arg-type]
    TypeError,
    "callable",
)
bad(
    "Counter.count_exceptions-not-exceptions",
    lambda e: e.jobs.count_exceptions(3),  # type: ignore[arg-type]
    TypeError,
    "exceptions",
)
for call, says in (
    (lambda e: e.requests.inc(), "'method'"),
    (lambda e: e.latency.observe(1), "'route'"),
    (lambda e: e.latency.time(), "'route'"),
    (lambda e: e.requests.labels(path="/").inc(1, exemplar={"t": "1"}), "'method'"),
    (lambda e: e.deploy.info({"v": "1"}), "'env'"),
):
    bad(f"unobservable-{len(ROWS)}", call, UnobservableMetricException, says)

# -- info() and state() ----------------------------------------------------------------

for value, error, says in (
    ("version=1", TypeError, "dict"),
    (None, TypeError, "dict"),
    ([("version", "1")], TypeError, "dict"),
    ({"": "x"}, LabelValidationException, "''"),
    ({"__v": "x"}, LabelValidationException, "'__v'"),
    ({1: "x"}, LabelValidationException, "1"),
    ({"v": None}, LabelValidationException, "None"),
    ({"v": ["x"]}, LabelValidationException, "list"),
    ({"v": "\ud800"}, LabelValidationException, "surrogate"),
):
    bad(f"Info.info-{show(value)}", bind(lambda e, v: e.build.info(v), value), error, says)
bad(
    "Info.info-key-is-a-label",
    lambda e: e.deploy.labels(env="prod").info({"env": "x"}),
    LabelValidationException,
    "'env'",
)
for state in ("flying", "", None, 0, ["running"], "Running"):
    bad(
        f"Enum.state-{show(state)}",
        bind(lambda e, s: e.state.state(s), state),
        ValueError,
        repr(state),
    )

# -- exemplars -----------------------------------------------------------------------

for exemplar, error, says in (
    ({"": "x"}, LabelValidationException, "''"),
    ({"__x": "x"}, LabelValidationException, "'__x'"),
    ({1: "x"}, LabelValidationException, "1"),
    ({"trace_id": None}, LabelValidationException, "None"),
    ({"trace_id": ["x"]}, LabelValidationException, "list"),
    ({"trace_id": "\ud800"}, LabelValidationException, "surrogate"),
    ({"trace_id": "x" * 200}, ValueError, "128"),
    ({"trace_id": "x" * MEGABYTE}, ValueError, "128"),
    ("trace", TypeError, "dict"),
    ([("trace_id", "x")], TypeError, "dict"),
):
    bad(
        f"Counter.inc-exemplar-{show(exemplar)}",
        bind(lambda e, x: e.get.inc(1, exemplar=x), exemplar),
        error,
        says,
    )
    bad(
        f"Histogram.observe-exemplar-{show(exemplar)}",
        bind(lambda e, x: e.home.observe(0.5, exemplar=x), exemplar),
        error,
        says,
    )
bad(
    "Summary.observe-exemplar",
    lambda e: e.payload.observe(1, exemplar={"trace_id": "x"}),
    ValueError,
    "summaries",
)

# -- registries --------------------------------------------------------------------

for prefix in ("", 3, "bad\ud800"):
    bad(
        f"prefix-{show(prefix)}",
        bind(lambda e, p: CollectorRegistry(prefix=p), prefix),
        ValueError,
        repr(prefix),
    )
for thing, name in ((object(), "object"), (None, "None"), (Counter, "Counter"), ("jobs", "jobs")):
    bad(f"register-{name}", bind(lambda e, t: e.registry.register(t), thing), TypeError, "neither")
    bad(
        f"unregister-{name}",
        bind(lambda e, t: e.registry.unregister(t), thing),
        KeyError,
        "not registered",
    )
bad("register-twice", lambda e: e.registry.register(e.jobs), ValueError, "already registered")
bad(
    "register-a-child-of-a-registered-metric",
    lambda e: e.registry.register(e.get),
    ValueError,
    "already registered",
)
bad(
    "register-clashing-unregistered-metric",
    lambda e: e.registry.register(Gauge("requests_total", "X", registry=None)),
    ValueError,
    "requests_total",
)
bad(
    "unregister-never-registered-metric",
    lambda e: e.registry.unregister(Counter("stray", "X", registry=None)),
    KeyError,
    "not registered",
)

# -- load_backend ------------------------------------------------------------------

for cls, error, says in (
    ("no_such_module_xyz.Backend", InvalidBackendClassException, "no_such_module_xyz"),
    ("apytheus.backends.NoSuchBackend", InvalidBackendClassException, "NoSuchBackend"),
    ("NoDots", InvalidBackendClassException, "NoDots"),
    ("os.path", InvalidBackendClassException, "'os.path'"),
    (dict, InvalidBackendClassException, "dict"),
    (int, InvalidBackendClassException, "int"),  # int({}) fails: int is still no backend
    (lambda config: None, InvalidBackendClassException, "lambda"),
    (3, InvalidBackendClassException, "3"),
):
    bad(f"load_backend-class-{show(cls)}", bind(lambda e, c: load_backend(c), cls), error, says)


def config_file(env: Env, text: str) -> str:
    path = env.tmp / "backend.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


for config, says in (
    ("{not json", "JSON"),
    ('{"a": 1', "JSON"),
    ("[1, 2]", "[1, 2]"),
    ("/nonexistent/apytheus.json", "/nonexistent/apytheus.json"),
    (123, "123"),
    (["url"], "url"),
):
    bad(
        f"load_backend-config-{show(config)}",
        bind(lambda e, c: load_backend(InProcessBackend, c), config),
        InvalidBackendConfigException,
        says,
    )
bad(
    "load_backend-config-file-not-an-object",
    lambda e: load_backend(InProcessBackend, config_file(e, "[1]")),
    InvalidBackendConfigException,
    "JSON object",
)
bad(
    "load_backend-config-file-bad-json",
    lambda e: load_backend(InProcessBackend, config_file(e, "{oops")),
    InvalidBackendConfigException,
    "JSON",
)
for config, says in (
    ({"flush_interval": -1}, "flush_interval"),
    ({"flush_interval": 0}, "flush_interval"),
    ({"flush_interval": "soon"}, "flush_interval"),
    ({"heartbeat_ttl": 0.01}, "heartbeat_ttl"),
    ({"worker_retention": -1}, "worker_retention"),
    ({"key_prefix": ""}, "key_prefix"),
    ({"key_prefix": "a{b}"}, "key_prefix"),
    ({"key_prefix": "a|b"}, "key_prefix"),
    ({"no_such_option": 1}, "no_such_option"),
    ({"url": "http://localhost"}, "redis://"),
    ({"url": 3}, "url"),
    ({"port": "abc"}, "port"),  # caught now, not by the flusher later
):
    bad(
        f"load_backend-redis-{show(config)}",
        bind(lambda e, c: load_backend(RedisBackend, c), config),
        InvalidBackendConfigException,
        says,
    )

# -- generate_metrics(names=...) -----------------------------------------------------

NAMES: list[tuple[object, str]] = [(123, "int"), ([["x"]], "list")]
for names, says in NAMES:
    bad(
        f"names-{show(names)}",
        bind(lambda e, n: generate_metrics(e.registry, names=n), names),
        TypeError,
        says,
    )


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_bad_input_raises_a_clear_error_and_changes_nothing(
    env: Env, row: Bad, same_backend: Backend
) -> None:
    before = exposition(env.registry)
    with pytest.raises(row.error) as caught:
        row.call(env)
    message = str(caught.value)
    for words in row.says:
        assert words in message, f"{type(caught.value).__name__}: {message[:300]!r}"
    assert exposition(env.registry) == before
    assert get_backend() is same_backend


def test_the_table_covers_every_entry_point() -> None:
    ids = " ".join(r.id for r in ROWS)
    for entry in (
        *KINDS,
        "labels-",
        "remove",
        "Counter.inc",
        "Gauge.inc",
        "Gauge.dec",
        "Gauge.set",
        "Histogram.observe",
        "Summary.observe",
        "Info.info",
        "Enum.state",
        "exemplar",
        "prefix",
        "register",
        "unregister",
        "load_backend-class",
        "load_backend-config",
        "load_backend-redis",
        "names",
        "duplicate",
        "buckets",
        "max_series",
        "multiprocess_mode",
        "Enum-states",
    ):
        assert entry in ids, entry
    assert len({r.id for r in ROWS}) == len(ROWS), "row ids must be unique"


@pytest.mark.parametrize(
    ("variable", "value", "error", "says"),
    [
        ("APYTHEUS_BACKEND_CLASS", "no_such_module_xyz.B", InvalidBackendClassException, "xyz"),
        ("PYTHEUS_BACKEND_CLASS", "os.path", InvalidBackendClassException, "os.path"),
        ("APYTHEUS_BACKEND_CONFIG", "{broken", InvalidBackendConfigException, "JSON"),
        ("PYTHEUS_BACKEND_CONFIG", "/nonexistent.json", InvalidBackendConfigException, "nonex"),
    ],
)
def test_bad_backend_environment_variables_raise_clearly(
    env: Env,
    monkeypatch: pytest.MonkeyPatch,
    same_backend: Backend,
    variable: str,
    value: str,
    error: type[Exception],
    says: str,
) -> None:
    for name in ("APYTHEUS_BACKEND_CLASS", "APYTHEUS_BACKEND_CONFIG"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name[1:], raising=False)
    monkeypatch.setenv(variable, value)
    before = exposition(env.registry)
    with pytest.raises(error, match=says):
        load_backend()
    assert exposition(env.registry) == before
    assert get_backend() is same_backend


# -- inputs that are odd but valid: they must work, not raise ----------------------------


@pytest.mark.parametrize(
    "mapping",
    [OrderedDict(method="PUT", path="/x"), types.MappingProxyType({"method": "PUT", "path": "/x"})],
    ids=["OrderedDict", "MappingProxyType"],
)
def test_labels_take_any_mapping_not_only_a_dict(env: Env, mapping: Mapping[str, str]) -> None:
    env.requests.labels(mapping).inc(2)
    assert env.registry.get_sample_value("requests_total", {"method": "PUT", "path": "/x"}) == 2.0


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ([], set()),
        ([""], set()),
        (["nope"], set()),
        ([None], set()),
        ("jobs_total", {"jobs"}),  # one name as a bare string
        (("jobs_total", "temperature"), {"jobs", "temperature"}),
        (iter(["requests_total"]), {"requests"}),
        (["requests"], {"requests"}),  # the family name works too
        (["latency_seconds_bucket"], {"latency_seconds"}),
        (["x" * MEGABYTE], set()),
    ],
    ids=[
        "empty",
        "blank",
        "unknown",
        "None",
        "str",
        "tuple",
        "iterator",
        "family",
        "bucket",
        "1MB",
    ],
)
def test_generate_metrics_name_filter_takes_odd_values(
    env: Env, names: Any, expected: set[str]
) -> None:
    items = list(names) if isinstance(names, Iterator) else names
    again = iter(items) if isinstance(names, Iterator) else items
    text = generate_metrics(env.registry, names=iter(items) if again is not items else items)
    om = generate_metrics(env.registry, openmetrics=True, names=again)
    assert {f.name.removesuffix("_total") for f in parse(text, False)} == expected
    assert {f.name for f in parse(om, True)} == expected


def test_a_gauge_function_that_raises_does_not_break_the_scrape(env: Env) -> None:
    """A failing callback loses its own gauge, as a failing custom collector does."""
    broken = Gauge("broken", "Broken", registry=env.registry)
    broken.set_function(lambda: 1 / 0)
    text = generate_metrics(env.registry)
    assert "jobs_total 7.0" in text


# -- long label values ---------------------------------------------------------------


def test_a_megabyte_label_value_works_end_to_end(env: Env) -> None:
    # Escapes at both ends; not everywhere: prometheus_client's parsers (the oracle)
    # take seconds per megabyte of escapes, apytheus itself milliseconds.
    value = 'a "quoted" \\ path\n' + "x" * MEGABYTE + '\n"end"'
    env.requests.labels(method="GET", path=value).inc(2)
    env.latency.labels({"route": value}).observe(0.5)
    env.build.info({"version": value})
    assert env.registry.get_sample_value("requests_total", {"method": "GET", "path": value}) == 2.0

    for openmetrics in (False, True):
        text = generate_metrics(env.registry, openmetrics=openmetrics)
        samples = [s for f in parse(text, openmetrics) for s in f.samples]
        found = {(s.name, s.value) for s in samples if value in s.labels.values()}
        assert ("requests_total", 2.0) in found
        assert ("latency_seconds_count", 1.0) in found
        assert ("build_info", 1.0) in found


async def test_a_megabyte_label_value_is_served_by_the_asgi_app(env: Env) -> None:
    value = "v" * MEGABYTE
    env.requests.labels(method="GET", path=value).inc()
    transport = httpx.ASGITransport(app=make_asgi_app(env.registry))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        plain = await client.get("/metrics")
        zipped = await client.get("/metrics", headers={"accept-encoding": "gzip"})
    assert plain.status_code == 200 and zipped.status_code == 200
    assert f'requests_total{{method="GET",path="{value}"}} 1.0' in plain.text
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.content == plain.content  # httpx decoded it
    assert int(zipped.headers["content-length"]) < len(plain.content) // 100
