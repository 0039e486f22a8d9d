"""An aiohttp app with request metrics and a /metrics endpoint (apytheus.aiohttp).

python examples/aiohttp_app.py              # serve on http://127.0.0.1:8080
python examples/aiohttp_app.py --port 9000  # or on another port

Then: curl http://127.0.0.1:8080/items/1 ; curl http://127.0.0.1:8080/metrics
"""

from __future__ import annotations

import argparse

from aiohttp import web

from apytheus.aiohttp import apytheus_cleanup_ctx, metrics_handler, metrics_middleware


async def item(request: web.Request) -> web.Response:
    return web.json_response({"item_id": request.match_info["item_id"]})


def make_app() -> web.Application:
    # first in the list, so that it sees what every other middleware answers
    app = web.Application(middlewares=[metrics_middleware()])
    app.router.add_get("/items/{item_id}", item)
    app.router.add_get("/metrics", metrics_handler())
    # the Redis backend's flusher runs while the app runs (nothing to do in-process)
    app.cleanup_ctx.append(apytheus_cleanup_ctx)
    return app


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app(), host="127.0.0.1", port=args.port)
