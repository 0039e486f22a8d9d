"""Prometheus' own parsers accept what apytheus renders (via ``promtool``).

* Text format 0.0.4: ``promtool check metrics`` reads the exposition on stdin,
  parses it with the Go text parser and lints it (exit 1 on a parse error,
  3 on a lint problem, 0 when clean).
* OpenMetrics 1.0.0: ``promtool check metrics`` cannot be used, whatever the
  exposition: it only understands the text format 0.0.4 (it stops at an
  exemplar, ``expected integer as timestamp, got "#"``, and rejects the
  ``info`` and ``stateset`` types). promtool's OpenMetrics parser (the one
  Prometheus scrapes with) is reachable through ``promtool tsdb
  create-blocks-from openmetrics``, which requires a timestamp on every
  sample; the test inserts one fixed timestamp after each sample value and
  changes nothing else, then checks that promtool parses the whole file
  (``# EOF`` included) and stores every sample.
"""

from __future__ import annotations

import re
import subprocess
from contextlib import suppress
from pathlib import Path

from conftest import require_tool

from apytheus import (
    CollectorRegistry,
    Counter,
    Enum,
    Gauge,
    Histogram,
    Info,
    Summary,
    generate_metrics,
)

TRICKY = 'say "hi" \\ back\nnext line, ünïcødé ✓ 日本 🎉'
# Characters that are no line end in either format, though str.splitlines() says otherwise.
CONTROL = "nul\x00 cr\r vt\x0b ff\x0c fs\x1c nel\x85 ls\u2028 ps\u2029 bom\ufeff max\U0010ffff"
HELP = 'Line one\nback\\slash and "quotes" ✓'
TIMESTAMP = 1_700_000_000  # seconds, as OpenMetrics writes timestamps


def every_metric_type() -> CollectorRegistry:
    """A prefixed registry with every metric type, labels, defaults and escaping cases."""
    registry = CollectorRegistry(prefix="shop")

    orders = Counter(
        "orders", HELP, ["path", "method"], default_labels={"method": "GET"}, registry=registry
    )
    orders.labels(path=TRICKY).inc(2, exemplar={"trace_id": "abc123", "note": TRICKY})
    orders.labels(path="/", method="POST").inc()
    Counter("refunds_total", "Refunds (name given with _total)", registry=registry).inc(3)

    temperature = Gauge("temperature_celsius", "Temperature", ["room"], registry=registry)
    temperature.labels(room=TRICKY).set(21.5)
    temperature.labels(room="pos").set(float("inf"))
    temperature.labels(room="neg").set(float("-inf"))
    temperature.labels(room="nan").set(float("nan"))
    temperature.labels(room=CONTROL).set(-40)
    Gauge("queue_size", f"Jobs waiting {CONTROL}", registry=registry).set(1e300)

    latency = Histogram(
        "request_duration_seconds",
        "Request duration",
        ["path"],
        buckets=[0.1, 1, 1e6],
        registry=registry,
    )
    latency.labels(path=TRICKY).observe(0.5, exemplar={"trace_id": "def456"})
    latency.labels(path="/").observe(0.1)
    latency.labels(path="/").observe(7)

    sizes = Summary("response_size_bytes", "Response size", ["path"], registry=registry)
    sizes.labels(path=TRICKY).observe(512)

    build = Info(
        "build", "Build facts", ["host"], default_labels={"host": TRICKY}, registry=registry
    )
    build.info({"version": "1.2.3", "commit": TRICKY})

    Enum("state", "Service state", states=["up", TRICKY], registry=registry).state(TRICKY)
    worker = Enum("worker_state", "Worker", ["worker"], states=["idle", "busy"], registry=registry)
    worker.labels(worker=TRICKY).state("busy")
    return registry


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    path = require_tool("promtool", "prometheus")
    return subprocess.run(
        [path, *args],
        input=stdin,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        check=False,
    )


def report(result: subprocess.CompletedProcess[str], exposition: str) -> str:
    return (
        f"promtool exited {result.returncode}\n--- stdout\n{result.stdout}"
        f"--- stderr\n{result.stderr}--- input\n{exposition}"
    )


def with_timestamps(exposition: str, timestamp: int) -> str:
    """Insert `` <timestamp>`` after the value of every sample line, nothing else.

    A sample line is ``name[{labels}] value[ # {exemplar labels} value timestamp]``;
    label values may hold escaped quotes, spaces, ``}`` and ``#``, so the label
    braces are scanned with their quoting rather than split on spaces.
    """
    lines = exposition.split("\n")  # not splitlines(): \r, \x85, \u2028... are not line ends
    assert lines.pop() == "", "an exposition ends with a newline"
    out = []
    for line in lines:
        if line.startswith("#"):
            out.append(line)
            continue
        i = 0
        while line[i] not in "{ ":
            i += 1
        if line[i] == "{":
            quoted = escaped = False
            while escaped or quoted or line[i] != "}":
                char = line[i]
                if escaped:
                    escaped = False
                elif char == "\\":
                    escaped = True
                elif char == '"':
                    quoted = not quoted
                i += 1
            i += 1
        assert line[i] == " ", f"no space after the labels of {line!r}"
        end = line.find(" ", i + 1)
        end = len(line) if end == -1 else end
        out.append(f"{line[:end]} {timestamp}{line[end:]}")
    return "\n".join(out) + "\n"


def test_text_exposition_of_every_metric_type_passes_promtool_check_metrics() -> None:
    exposition = generate_metrics(every_metric_type())

    result = promtool("check", "metrics", stdin=exposition)

    # Exit 0 means: parsed by Prometheus' text parser and no lint problem at all
    # (a counter without _total, missing HELP, camelCase names, non-base units...).
    assert result.returncode == 0, report(result, exposition)
    assert result.stdout.strip() == "", report(result, exposition)
    assert result.stderr.strip() == "", report(result, exposition)


def test_openmetrics_exposition_of_every_metric_type_passes_promtools_openmetrics_parser(
    tmp_path: Path,
) -> None:
    exposition = generate_metrics(every_metric_type(), openmetrics=True)
    samples = [line for line in exposition.split("\n") if line and not line.startswith("#")]
    stamped = with_timestamps(exposition, TIMESTAMP)
    source = tmp_path / "exposition.om"
    source.write_text(stamped, encoding="utf-8")

    result = promtool(
        "tsdb", "create-blocks-from", "openmetrics", str(source), str(tmp_path / "blocks")
    )

    assert result.returncode == 0, report(result, stamped)
    assert result.stderr.strip() == "", report(result, stamped)
    # The block table lists how many samples were stored: every line of the exposition.
    header, block = result.stdout.strip().splitlines()
    columns = dict(zip(re.split(r"\s{2,}", header), block.split(), strict=True))
    assert columns["NUM SAMPLES"] == str(len(samples)), (columns, report(result, stamped))


def test_enum_named_with_a_colon_is_refused_or_gets_a_valid_state_label() -> None:
    # An Enum's state label is named after the metric, but a label name cannot hold
    # the ':' a metric name may; such an Enum must be refused (or its label renamed).
    registry = CollectorRegistry()
    with suppress(ValueError):
        Enum("task:state", "Task state", states=["idle"], registry=registry).state("idle")
    exposition = generate_metrics(registry)

    result = promtool("check", "metrics", stdin=exposition)

    # Exit 3 and "metric names should not contain ':'" is promlint's style warning
    # for a legal name (colons are meant for recording rules): accepted. A parse
    # error (exit 1) or any other message is not.
    lines = (result.stdout + result.stderr).strip().splitlines()
    others = [line for line in lines if "metric names should not contain ':'" not in line]
    assert result.returncode in (0, 3), report(result, exposition)
    assert others == [], report(result, exposition)


def test_timestamps_are_inserted_after_the_sample_value_and_nowhere_else() -> None:
    exposition = (
        '# HELP a_total Help with } and # and \\"\n'
        "a_total 1.0\n"
        'a_total{x="q\\"} # {",y="\\\\"} 2.0 # {t="}"} 2.0 123.456\n'
        'b{x="\r \x85 \u2028"} 3.0\n'
        "# EOF\n"
    )

    assert with_timestamps(exposition, 99) == (
        '# HELP a_total Help with } and # and \\"\n'
        "a_total 1.0 99\n"
        'a_total{x="q\\"} # {",y="\\\\"} 2.0 99 # {t="}"} 2.0 123.456\n'
        'b{x="\r \x85 \u2028"} 3.0 99\n'
        "# EOF\n"
    )
