"""apytheus: async-native Prometheus metrics for Python.

The names below are re-exported from their modules (`apytheus.metrics`,
`apytheus.registry`, `apytheus.exposition`, `apytheus.backends`), so both
pytheus-style (``from apytheus.metrics import Counter``) and
prometheus_client-style (``from apytheus import Counter``) imports work.

The package's folders follow a value from ``counter.inc()`` to ``GET /metrics``;
imports only point downstream:

* record: ``metrics.py`` and ``_record/`` write into the per-thread cells of
  ``backends/_series.py`` (no lock, no I/O);
* buffer, flush, store: ``backends/`` (``_buffer.py`` makes exactly-once
  batches, ``_flusher.py`` sends them, ``redis.py`` wires the Redis store);
* collect: ``registry.py`` and ``_collect/`` read every series in one backend
  read and build the samples;
* expose: ``exposition.py`` and ``_expose/`` encode, negotiate and serve them.
"""

from __future__ import annotations

from ._public import publish
from .backends import load_backend as load_backend
from .backends._current import lifespan as lifespan
from .exposition import OPENMETRICS_CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from .exposition import PROMETHEUS_CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from .exposition import agenerate_metrics as agenerate_metrics
from .exposition import delete_from_gateway as delete_from_gateway
from .exposition import generate_metrics as generate_metrics
from .exposition import make_asgi_app as make_asgi_app
from .exposition import make_wsgi_app as make_wsgi_app
from .exposition import push_to_gateway as push_to_gateway
from .exposition import pushadd_to_gateway as pushadd_to_gateway
from .exposition import serve as serve
from .exposition import start_http_server as start_http_server
from .exposition import write_to_textfile as write_to_textfile
from .metrics import Counter as Counter
from .metrics import CustomCollector as CustomCollector
from .metrics import Enum as Enum
from .metrics import Gauge as Gauge
from .metrics import Histogram as Histogram
from .metrics import Info as Info
from .metrics import Summary as Summary
from .registry import REGISTRY as REGISTRY
from .registry import CollectorRegistry as CollectorRegistry

__all__ = [
    "CollectorRegistry",
    "Counter",
    "CustomCollector",
    "Enum",
    "Gauge",
    "Histogram",
    "Info",
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "REGISTRY",
    "Summary",
    "agenerate_metrics",
    "delete_from_gateway",
    "generate_metrics",
    "lifespan",
    "load_backend",
    "make_asgi_app",
    "make_wsgi_app",
    "push_to_gateway",
    "pushadd_to_gateway",
    "serve",
    "start_http_server",
    "write_to_textfile",
]


__version__ = "0.1.0.dev0"

# As in pytheus: APYTHEUS_BACKEND_CLASS / _CONFIG select the backend at import
# (no I/O happens here; backends connect on first use).
load_backend()

publish(globals())
