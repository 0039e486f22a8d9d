"""A Litestar app with request metrics labeled by Litestar's path templates, and /metrics.

python examples/litestar_app.py              # serve on http://127.0.0.1:8080
python examples/litestar_app.py --port 9000  # or on another port

Then: curl http://127.0.0.1:8080/items/1 ; curl http://127.0.0.1:8080/metrics
(route="/items/{item_id}", and route="<unmatched>" for a path no handler takes).
"""

from __future__ import annotations

import argparse

import uvicorn
from litestar import Litestar, get
from litestar.handlers import asgi
from litestar.params import FromPath
from litestar.types import Receive, Scope, Send

from apytheus import make_asgi_app
from apytheus.middleware import MetricsMiddleware

metrics_app = make_asgi_app()


@get("/items/{item_id:int}")
async def item(item_id: FromPath[int]) -> dict[str, int]:
    return {"item_id": item_id}


@asgi("/metrics", is_mount=True, copy_scope=True)
async def metrics(scope: Scope, receive: Receive, send: Send) -> None:
    await metrics_app(scope, receive, send)  # type: ignore[arg-type]


# Wrap the whole app, not one of Litestar's own middlewares: those run after routing,
# for matched routes only, and the middleware must see 404s too. Wrapping the
# top-level app also runs apytheus.lifespan (the Redis backend's flusher).
app = MetricsMiddleware(Litestar(route_handlers=[item, metrics]))

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port)
