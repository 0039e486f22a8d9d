"""A FastAPI app for `uvicorn --workers 4`: every worker's metrics add up through Redis.

    export APYTHEUS_BACKEND_CLASS=apytheus.backends.redis.RedisBackend
    export APYTHEUS_BACKEND_CONFIG='{"url": "redis://127.0.0.1:6379/0", "key_prefix": "shop"}'
    uvicorn examples.fastapi_redis.app:app --workers 4 --port 8000

The backend is selected by the environment at `import apytheus`; the middleware
runs its flusher for the app's lifetime. Without the variables it runs on the
in-process backend (one worker).
"""

from __future__ import annotations

from fastapi import FastAPI

from apytheus import Counter, Gauge, Histogram, make_asgi_app
from apytheus.middleware import MetricsMiddleware

ITEMS_VIEWED = Counter("items_viewed", "Item pages served, by kind.", ["kind"])
# A UTF-8 name: a scraper that does not ask for UTF-8 names gets `shop_orders_total`.
ORDERS = Counter("shop.orders", "Orders placed.")
ORDER_ITEMS = Histogram("order_items", "Items per order.", buckets=[1, 2, 5, 10, 20])
# Native buckets only (`buckets=()`), each at most 10 % wider than the one before:
# Prometheus reads them when it asks for protobuf (`--enable-feature=native-histograms`).
JOB_DURATION = Histogram(
    "job_duration_seconds",
    "Time a job took, as its runner reports it.",
    buckets=(),
    native_bucket_factor=1.1,
)
# Set by whichever worker answers PUT /stock: the most recent write wins.
IN_STOCK = Gauge("items_in_stock", "Items in stock, as last set.", multiprocess_mode="mostrecent")

app = FastAPI()
app.add_middleware(MetricsMiddleware)
app.add_route("/metrics", make_asgi_app())


@app.get("/items/{item_id}")
async def read_item(item_id: int) -> dict[str, int | str]:
    kind = "even" if item_id % 2 == 0 else "odd"
    ITEMS_VIEWED.labels(kind=kind).inc()
    return {"item_id": item_id, "kind": kind}


@app.post("/orders")
async def place_order(items: int) -> dict[str, int]:
    ORDERS.inc()
    ORDER_ITEMS.observe(items)
    return {"items": items}


@app.post("/jobs")
async def report_job(seconds: float) -> dict[str, float]:
    JOB_DURATION.observe(seconds)
    return {"seconds": seconds}


@app.put("/stock/{count}")
async def set_stock(count: int) -> dict[str, int]:
    IN_STOCK.set(count)
    return {"in_stock": count}
