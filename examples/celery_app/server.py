"""Serve the Celery workers' metrics from one small process that reads the shared Redis.

    python -m examples.celery_app.server --port 9100

Run it with the same APYTHEUS_BACKEND_* environment as the workers. A scrape
reads what every pool child (on any host) has flushed to Redis; the pool
children serve nothing themselves. Stop it with Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse

import anyio

import apytheus
from apytheus.exposition import serve

from . import metrics  # noqa: F401  (registers the metrics this process reads from Redis)


async def main(port: int, addr: str) -> None:
    async with apytheus.lifespan():
        await serve(port, addr)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--addr", default="0.0.0.0")
    args = parser.parse_args()
    anyio.run(main, args.port, args.addr)
