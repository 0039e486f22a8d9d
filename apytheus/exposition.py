"""EXPOSE: render a registry for Prometheus, serve it, push it, write it to a file.

`generate_metrics` (sync) and `agenerate_metrics` (async, yields to the event
loop while it works) return the text; `render` and `arender` return the body
and Content-Type of the best format an ``Accept`` header allows (protobuf,
OpenMetrics, text). `make_asgi_app`, `make_wsgi_app`, `start_http_server`,
`serve` (and the aiohttp handler) serve it through the same negotiation,
compressing when ``Accept-Encoding`` allows gzip. The
code lives in ``apytheus._expose``; this module is its public face.
"""

from __future__ import annotations

from ._expose.asgi import MetricsApp as MetricsApp
from ._expose.asgi import make_asgi_app as make_asgi_app
from ._expose.formats import OPENMETRICS_CONTENT_TYPE as OPENMETRICS_CONTENT_TYPE
from ._expose.formats import PROMETHEUS_CONTENT_TYPE as PROMETHEUS_CONTENT_TYPE
from ._expose.formats import PROTOBUF_CONTENT_TYPE as PROTOBUF_CONTENT_TYPE
from ._expose.negotiate import Format as Format
from ._expose.negotiate import choose_format as choose_format
from ._expose.negotiate import negotiate as negotiate
from ._expose.push import PushgatewayError as PushgatewayError
from ._expose.push import abasic_auth_handler as abasic_auth_handler
from ._expose.push import adefault_handler as adefault_handler
from ._expose.push import adelete_from_gateway as adelete_from_gateway
from ._expose.push import apush_to_gateway as apush_to_gateway
from ._expose.push import apushadd_to_gateway as apushadd_to_gateway
from ._expose.push import basic_auth_handler as basic_auth_handler
from ._expose.push import default_handler as default_handler
from ._expose.push import delete_from_gateway as delete_from_gateway
from ._expose.push import push_to_gateway as push_to_gateway
from ._expose.push import pushadd_to_gateway as pushadd_to_gateway
from ._expose.render import agenerate_metrics as agenerate_metrics
from ._expose.render import arender as arender
from ._expose.render import generate_metrics as generate_metrics
from ._expose.render import render as render
from ._expose.server import serve as serve
from ._expose.textfile import write_to_textfile as write_to_textfile
from ._expose.wsgi import make_wsgi_app as make_wsgi_app
from ._expose.wsgi import start_http_server as start_http_server
from ._public import publish

__all__ = [
    "Format",
    "MetricsApp",
    "OPENMETRICS_CONTENT_TYPE",
    "PROMETHEUS_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "PushgatewayError",
    "abasic_auth_handler",
    "adefault_handler",
    "adelete_from_gateway",
    "agenerate_metrics",
    "apush_to_gateway",
    "apushadd_to_gateway",
    "arender",
    "basic_auth_handler",
    "choose_format",
    "default_handler",
    "delete_from_gateway",
    "generate_metrics",
    "make_asgi_app",
    "make_wsgi_app",
    "negotiate",
    "push_to_gateway",
    "pushadd_to_gateway",
    "render",
    "serve",
    "start_http_server",
    "write_to_textfile",
]

publish(globals())
