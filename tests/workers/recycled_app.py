"""The app tests/test_recycled_workers.py serves under gunicorn, whose workers it recycles.

Each worker sets a ``livesum`` gauge to 1 when it starts: the scrape's total is the
number of live workers. Requests are counted by `MetricsMiddleware` (which also runs
`apytheus.lifespan`: the flusher, and the last flush when the worker stops).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from apytheus import Gauge
from apytheus.middleware import MetricsMiddleware

UP = Gauge("workers_up", "Workers serving", multiprocess_mode="livesum")
UP.set(1)


async def work(request: Request) -> PlainTextResponse:
    return PlainTextResponse("done")


app = MetricsMiddleware(Starlette(routes=[Route("/work", work)]))
