"""A Quart app with request metrics labeled by Quart's URL rules, and /metrics.

python examples/quart_app.py              # serve on http://127.0.0.1:8080
python examples/quart_app.py --port 9000  # or on another port

Then: curl http://127.0.0.1:8080/items/1 ; curl http://127.0.0.1:8080/metrics
(route="/items/<int:item_id>", and route="<unmatched>" for a path no rule matches).
"""

from __future__ import annotations

import argparse

import uvicorn
from quart import Quart

from apytheus import PROMETHEUS_CONTENT_TYPE, agenerate_metrics
from apytheus.middleware import MetricsMiddleware

app = Quart(__name__)


@app.get("/items/<int:item_id>")
async def item(item_id: int) -> dict[str, int]:
    return {"item_id": item_id}


@app.get("/metrics")
async def metrics() -> tuple[str, dict[str, str]]:
    return await agenerate_metrics(), {"Content-Type": PROMETHEUS_CONTENT_TYPE}


# Quart's way to add ASGI middleware: `app` stays a Quart (for `quart run`, say).
app.asgi_app = MetricsMiddleware(app.asgi_app)  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8080)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port)
