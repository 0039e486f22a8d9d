"""Labels as pytheus documents them: dict, kwargs, partial, defaults, caching."""

from __future__ import annotations

import enum

import pytest

from apytheus import CollectorRegistry, Counter, Gauge, Histogram, generate_metrics
from apytheus.backends import LabelSet
from apytheus.exceptions import LabelValidationException, UnobservableMetricException


def test_labels_take_a_dict_kwargs_or_positional_values(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["method", "path"], registry=registry)
    c.labels({"method": "GET", "path": "/"}).inc()
    c.labels(method="GET", path="/").inc()
    c.labels("GET", "/").inc()
    assert registry.get_sample_value("c_total", {"method": "GET", "path": "/"}) == 3.0


def test_the_same_label_values_return_the_same_cached_child(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["a", "b"], registry=registry)
    first = c.labels(a="1", b="2")
    assert c.labels(a="1", b="2") is first
    assert c.labels(b="2", a="1") is first
    assert c.labels({"a": "1", "b": "2"}) is first
    assert c.labels("1", "2") is first
    assert c.labels(a="1").labels(b="2") is first


def test_partial_labels_return_a_reusable_object(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["method", "path"], registry=registry)
    get = c.labels(method="GET")
    assert c.labels(method="GET") is get
    get.labels(path="/a").inc()
    get.labels(path="/b").inc(2)
    assert registry.get_sample_value("c_total", {"method": "GET", "path": "/b"}) == 2.0


def test_observing_with_incomplete_labels_raises_a_clear_error(
    registry: CollectorRegistry,
) -> None:
    h = Histogram("h", "H", ["method", "path"], registry=registry)
    g = Gauge("g", "G", ["a"], registry=registry)
    with pytest.raises(UnobservableMetricException, match=r"\['path'\] have no value"):
        h.labels(method="GET").observe(1)
    with pytest.raises(UnobservableMetricException):
        h.observe(1)
    with pytest.raises(UnobservableMetricException):
        g.set(1)
    with pytest.raises(UnobservableMetricException):
        g.inc()
    with pytest.raises(UnobservableMetricException):
        h.time()
    assert generate_metrics(registry).count("\n") == 4  # HELP and TYPE lines only


def test_default_labels_fill_what_is_not_given_and_can_be_overridden(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", ["env", "path"], default_labels={"env": "prod"}, registry=registry)
    c.labels(path="/").inc()
    c.labels(path="/", env="dev").inc(2)
    assert registry.get_sample_value("c_total", {"env": "prod", "path": "/"}) == 1.0
    assert registry.get_sample_value("c_total", {"env": "dev", "path": "/"}) == 2.0


def test_a_metric_whose_defaults_cover_every_label_is_observable(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", ["env"], default_labels={"env": "prod"}, registry=registry)
    assert registry.get_sample_value("c_total", {"env": "prod"}) == 0.0
    c.inc()
    c.labels(env="prod").inc()
    assert c.labels(env="prod") is c
    assert registry.get_sample_value("c_total", {"env": "prod"}) == 2.0


def test_labels_render_in_declared_order(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["z", "a"], registry=registry)
    c.labels(a="1", z="2").inc()
    assert 'c_total{z="2",a="1"} 1.0' in generate_metrics(registry)


def test_no_labels_returns_the_metric_itself(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["a"], registry=registry)
    assert c.labels() is c


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.labels(b="x"),
        lambda c: c.labels({"a": "1"}, a="1"),
        lambda c: c.labels("1", a="1"),
        lambda c: c.labels("1", "2"),
        lambda c: c.labels(a=None),
        lambda c: c.labels(a=["x"]),
        lambda c: c.labels({1: "x"}),
    ],
)
def test_wrong_label_sets_raise_and_create_nothing(
    registry: CollectorRegistry, call: object
) -> None:
    c = Counter("c", "C", ["a"], registry=registry)
    with pytest.raises(LabelValidationException):
        call(c)  # type: ignore[operator]
    assert "c_total{" not in generate_metrics(registry)


def test_labels_on_a_metric_without_label_names_raise(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", registry=registry)
    with pytest.raises(LabelValidationException, match="declares no labels"):
        c.labels(a="1")


@pytest.mark.parametrize(
    "names", [["__a"], [""], ["a", "a"], "ab", [1], ["x\ud800"], ["a.b", "a_b"], ["a-b", "a_b"]]
)
def test_invalid_label_names_are_refused(registry: CollectorRegistry, names: object) -> None:
    with pytest.raises(LabelValidationException):
        Counter("c", "C", names, registry=registry)  # type: ignore[arg-type]
    assert registry.collect() == []


def test_default_labels_must_be_declared_labels(registry: CollectorRegistry) -> None:
    with pytest.raises(LabelValidationException):
        Counter("c", "C", ["a"], default_labels={"b": "x"}, registry=registry)


def test_numbers_and_str_enums_are_label_values_by_their_text(registry: CollectorRegistry) -> None:
    class Color(str, enum.Enum):
        RED = "red"

    c = Counter("c", "C", ["code", "color"], registry=registry)
    c.labels(200, Color.RED).inc()
    c.labels("200", "red").inc()
    c.labels(code=200, color=Color.RED).inc()
    assert registry.get_sample_value("c_total", {"code": "200", "color": "red"}) == 3.0


def test_equal_but_differently_typed_values_stay_distinct(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["v"], registry=registry)
    c.labels(v=1).inc()
    c.labels(v=True).inc()
    c.labels(v=1.0).inc()
    for text in ("1", "True", "1.0"):
        assert registry.get_sample_value("c_total", {"v": text}) == 1.0


def test_remove_drops_one_series_and_a_later_lookup_starts_from_zero(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", ["a"], registry=registry)
    c.labels(a="x").inc(3)
    c.labels(a="y").inc()
    c.remove("x")
    assert registry.get_sample_value("c_total", {"a": "x"}) is None
    assert registry.get_sample_value("c_total", {"a": "y"}) == 1.0
    c.labels(a="x").inc()
    assert registry.get_sample_value("c_total", {"a": "x"}) == 1.0
    c.remove(a="y")
    assert registry.get_sample_value("c_total", {"a": "y"}) is None
    c.remove(a="nope")  # unknown series are ignored, as in prometheus_client
    assert "nope" not in generate_metrics(registry)
    with pytest.raises(LabelValidationException):
        c.remove(b="x")


def test_remove_drops_a_child_found_by_labels_in_any_order_and_keeps_the_others(
    registry: CollectorRegistry,
) -> None:
    """The metric's cache of children is shared with its family's: keys given in another
    order, or as numbers, go when a series is removed; other children stay the same."""
    c = Counter("c", "C", ["a", "b"], registry=registry)
    kept = c.labels(a="1", b="2")
    dropped = c.labels(b="x", a="y")
    assert c.labels(b="x", a="y") is dropped
    assert c.labels(a=1, b=2) is kept
    dropped.inc()
    c.remove("y", "x")
    assert c.labels(b="x", a="y") is not dropped
    assert c.labels(a="y", b="x") is c.labels(b="x", a="y")
    assert c.labels(a="1", b="2") is kept
    assert c.labels(b="2", a="1") is kept
    assert c.labels(a=1, b=2) is kept
    assert registry.get_sample_value("c_total", {"a": "y", "b": "x"}) == 0.0


def test_remove_by_labels_drops_every_matching_series(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["a", "b"], registry=registry)
    for a, b in [("1", "x"), ("1", "y"), ("2", "x")]:
        c.labels(a=a, b=b).inc()
    c.remove_by_labels({"a": "1"})
    assert registry.get_sample_value("c_total", {"a": "1", "b": "x"}) is None
    assert registry.get_sample_value("c_total", {"a": "1", "b": "y"}) is None
    assert registry.get_sample_value("c_total", {"a": "2", "b": "x"}) == 1.0


def test_clear_drops_every_labeled_series(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["a"], registry=registry)
    for v in "xyz":
        c.labels(a=v).inc()
    c.clear()
    assert "c_total{" not in generate_metrics(registry)
    c.labels(a="x").inc()
    assert registry.get_sample_value("c_total", {"a": "x"}) == 1.0


def test_clear_keeps_the_default_labels_series(registry: CollectorRegistry) -> None:
    c = Counter("c", "C", ["a"], default_labels={"a": "d"}, registry=registry)
    c.inc(2)
    c.labels(a="x").inc()
    c.clear()
    c.inc()
    assert registry.get_sample_value("c_total", {"a": "d"}) == 3.0
    assert registry.get_sample_value("c_total", {"a": "x"}) is None


def test_a_positional_tuple_never_matches_a_cached_keyword_child(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", ["a"], registry=registry)
    c.labels(a="1")
    with pytest.raises(LabelValidationException):
        c.labels(("a", "1"))


def test_a_positional_tuple_never_matches_a_cached_partial_child(
    registry: CollectorRegistry,
) -> None:
    """A partial child is cached by its label pairs, in the cache positional values use."""
    c = Counter("c", "C", ["a", "b"], registry=registry)
    c.labels(a="1")
    with pytest.raises(LabelValidationException):
        c.labels(("a", "1"))


def test_a_child_refuses_positional_values_even_for_a_child_it_cached(
    registry: CollectorRegistry,
) -> None:
    c = Counter("c", "C", ["a", "b"], registry=registry)
    child = c.labels("1", "2")
    assert child.labels(a="3", b="4") is c.labels("3", "4")
    with pytest.raises(LabelValidationException, match="expects 0 label values"):
        child.labels("3", "4")


def test_a_series_label_values_are_kept_once_whatever_form_found_it(
    registry: CollectorRegistry,
) -> None:
    """One tuple of values is the series' key, its children's and the metric's cache key."""
    c = Counter("c", "C", ["a", "b"], registry=registry)
    child = c.labels(b="2", a="1")
    assert c.labels("1", "2") is child
    assert c.labels({"b": "2", "a": "1"}) is child
    assert c.labels(a="1", b="2") is child
    family = c._family
    values = child._series.labels.values
    assert values == ("1", "2")
    assert [k for k in family.handles if k is values] == list(family.handles)
    assert [k for k in family.series_values() if k is values] == [values]
    assert family.aliases == []


def test_label_sets_compare_by_names_and_values() -> None:
    labels = LabelSet(("a", "b"), ("x", "y"))
    assert labels == LabelSet.from_pairs([("a", "x"), ("b", "y")])
    assert hash(labels) == hash(LabelSet.from_pairs([("a", "x"), ("b", "y")]))
    assert labels != LabelSet(("b", "a"), ("x", "y"))
    assert labels.pairs == (("a", "x"), ("b", "y"))
    assert labels.as_dict() == {"a": "x", "b": "y"}
    assert labels.plus(("c", "z")) == LabelSet(("a", "b", "c"), ("x", "y", "z"))
    assert labels.text == 'a="x",b="y"'
    with pytest.raises(ValueError, match="2 label names but 1 values"):
        LabelSet(("a", "b"), ("x",))


def test_positional_labels_and_remove_on_a_metric_whose_defaults_fill_every_label() -> None:
    c = Counter("jobs_pos", "d", ["method"], default_labels={"method": "GET"}, registry=None)
    assert c.labels("POST") is c.labels(method="POST")
    c.remove("GET")  # positional values fill the labels not given, defaults or not


def test_the_default_series_made_again_after_remove_is_exposed(
    registry: CollectorRegistry,
) -> None:
    c = Counter("jobs_rm", "d", ["a"], default_labels={"a": "1"}, registry=registry)
    c.inc(5)
    c.remove(a="1")
    c.labels(a="1").inc()  # a new series: not the metric's removed one
    assert registry.get_sample_value("jobs_rm_total", {"a": "1"}) == 1.0
    c.inc()  # the metric itself records into it too
    assert registry.get_sample_value("jobs_rm_total", {"a": "1"}) == 2.0
    assert c.labels(a="1") is c
