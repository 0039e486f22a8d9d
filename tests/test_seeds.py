"""The code samples of the documents apytheus was founded on run after renaming the import.

Each sample is copied from pytheus' README or prometheus_client's README with
only ``pytheus`` / ``prometheus_client`` replaced by ``apytheus``. Names the
samples leave undefined (``do_something``) are given to them; samples that
raise on purpose are wrapped where noted.
"""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

from apytheus import REGISTRY, CollectorRegistry, generate_metrics


def run(sample: str, **names: Any) -> dict[str, Any]:
    namespace: dict[str, Any] = {"do_something": lambda: None, **names}
    exec(textwrap.dedent(sample), namespace)
    return namespace


def value(name: str, labels: dict[str, str] | None = None) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_pytheus_partial_labels_sample() -> None:
    run("""
        from apytheus.metrics import Counter
        my_metric = Counter('metric_name', 'desc', required_labels=['req1', 'req2'])
        my_metric.labels({'req1': '1', 'req2': '2'}).inc()  # you can pass all the labels at once
        partial_my_metric = my_metric.labels({'req1': '1'})  # a cacheable object with one of the required labels already set
        observable_my_metric = partial_my_metric.labels({'req2': '2'})  # finish setting the remaining values before observing
        observable_my_metric.inc()
        my_metric.labels(req1='1', req2='2')
    """)  # noqa: E501
    assert value("metric_name_total", {"req1": "1", "req2": "2"}) == 2.0


def test_pytheus_default_labels_sample() -> None:
    run("""
        from apytheus.metrics import Counter
        my_metric = Counter('metric_name', 'desc', required_labels=['req1', 'req2'], default_labels={'req2': 'me_set!'})
        my_metric.labels({'req1': '1'}).inc()  # as we have req2 as a default label we only need to set the remaining labels for observing
        my_metric.labels({'req1': '1', 'req2': '2'})  # you can still override default labels!
    """)  # noqa: E501
    assert value("metric_name_total", {"req1": "1", "req2": "me_set!"}) == 1.0
    assert value("metric_name_total", {"req1": "1", "req2": "2"}) == 0.0


def test_pytheus_counter_sample() -> None:
    ns = run("""
        from apytheus.metrics import Counter
        counter = Counter(name="my_counter", description="My description")
        counter.inc()
        counter.inc(7)
        try:
            with counter.count_exceptions():
                raise ValueError  # increases counter by 1
        except ValueError:
            pass
        try:
            with counter.count_exceptions((IndexError, ValueError)):
                raise ValueError  # increases counter by 1
        except ValueError:
            pass
        @counter
        def test():
            raise ValueError  # increases counter by 1 when called
        @counter(exceptions=(IndexError, ValueError))
        def test2():
            raise ValueError  # increases counter by 1 when called
    """)
    for f in (ns["test"], ns["test2"]):
        with pytest.raises(ValueError):
            f()
    assert value("my_counter_total") == 12.0


def test_pytheus_gauge_histogram_and_summary_samples() -> None:
    ns = run("""
        from apytheus.metrics import Gauge, Histogram, Summary
        gauge = Gauge(name="my_gauge", description="My description")
        gauge.inc()
        gauge.inc(7)
        gauge.dec()
        gauge.set(7)
        gauge.set_to_current_time()
        with gauge.track_inprogress():
            do_something()
        with gauge.time():
            do_something()
        @gauge
        def do_something():
            ...
        @gauge(track_inprogress=True)
        def do_something_else():
            ...
        histogram = Histogram(name="my_histogram", description="My description", buckets=(0.2, 1, 3))
        histogram.observe(0.4)
        with histogram.time():
            do_something()
        @histogram
        def do_something():
            ...
        summary = Summary(name="my_summary", description="My description")
        summary.observe(0.4)
        with summary.time():
            do_something()
        @summary
        def do_something():
            ...
    """)  # noqa: E501
    ns["do_something"]()
    ns["do_something_else"]()
    assert value("my_gauge") is not None
    assert value("my_histogram_count") == 3.0
    assert value("my_histogram_bucket", {"le": "1.0"}) == 3.0
    assert value("my_summary_count") == 3.0


def test_pytheus_custom_collector_sample_with_collect_written_without_self() -> None:
    run("""
        from apytheus.metrics import Counter, CustomCollector
        from apytheus.registry import REGISTRY
        class MyCustomCollector(CustomCollector):
            def collect():
                counter = Counter('name', 'desc', registry=None)  # note that we are disabling automatic registering
                counter.inc()
                yield counter
        REGISTRY.register(MyCustomCollector())
    """)  # noqa: E501
    assert "name_total 1.0" in generate_metrics()


def test_pytheus_backend_sample_shows_the_in_process_backend() -> None:
    ns = run("""
        from apytheus.metrics import Counter
        counter = Counter(
            name="my_metric",
            description="My description",
            required_labels=["label_a", "label_b"],
        )
        backend_class = counter._metric_value_backend.__class__
        config = counter._metric_value_backend.config
    """)
    assert ns["backend_class"].__name__ == "InProcessBackend"
    assert ns["config"] == {}


def test_prometheus_client_counter_and_gauge_samples() -> None:
    ns = run("""
        from apytheus import Counter
        c = Counter('my_failures', 'Description of counter')
        c.inc() # Increment by 1
        c.inc(1.6) # Increment by given value
        @c.count_exceptions()
        def f():
            pass
        with c.count_exceptions():
            pass
        # Count only one type of exception
        with c.count_exceptions(ValueError):
            pass

        from apytheus import Gauge
        g = Gauge('my_inprogress_requests', 'Description of gauge')
        g.inc() # Increment by 1
        g.dec(10) # Decrement by given value
        g.set(4.2) # Set to a given value
        g.set_to_current_time() # Set to current unixtime
        # Increment when entered, decrement when exited.
        @g.track_inprogress()
        def f():
            pass
        with g.track_inprogress():
            pass
        d = Gauge('data_objects', 'Number of objects')
        my_dict = {}
        d.set_function(lambda: len(my_dict))
    """)
    ns["my_dict"]["a"] = 1
    assert value("my_failures_total") == 2.6
    assert value("data_objects") == 1.0


def test_prometheus_client_summary_histogram_info_enum_samples() -> None:
    run("""
        from apytheus import Summary
        s = Summary('request_latency_seconds', 'Description of summary')
        s.observe(4.7) # Observe 4.7 (seconds in this case)
        @s.time()
        def f():
            pass
        f()
        with s.time():
            pass
    """)
    assert value("request_latency_seconds_count") == 3.0
    REGISTRY.set_registry(CollectorRegistry())
    run("""
        from apytheus import Histogram
        h = Histogram('request_latency_seconds', 'Description of histogram')
        h.observe(4.7) # Observe 4.7 (seconds in this case)
        @h.time()
        def f():
            pass
        with h.time():
            pass

        from apytheus import Info
        i = Info('my_build_version', 'Description of info')
        i.info({'version': '1.2.3', 'buildhost': 'foo@bar'})

        from apytheus import Enum
        e = Enum('my_task_state', 'Description of enum',
                states=['starting', 'running', 'stopped'])
        e.state('running')
    """)
    assert value("request_latency_seconds_bucket", {"le": "5.0"}) == 2.0
    assert value("my_build_version_info", {"version": "1.2.3", "buildhost": "foo@bar"}) == 1.0
    assert value("my_task_state", {"my_task_state": "running"}) == 1.0


@pytest.mark.parametrize(
    "sample",
    [
        """
        from apytheus import Counter
        c = Counter('my_requests_total', 'HTTP Failures', ['method', 'endpoint'])
        c.labels('get', '/').inc()
        c.labels('post', '/submit').inc()
        """,
        """
        from apytheus import Counter
        c = Counter('my_requests_total', 'HTTP Failures', ['method', 'endpoint'])
        c.labels(method='get', endpoint='/').inc()
        c.labels(method='post', endpoint='/submit').inc()
        """,
    ],
)
def test_prometheus_client_label_samples(sample: str) -> None:
    run(sample)
    assert value("my_requests_total", {"method": "post", "endpoint": "/submit"}) == 1.0
