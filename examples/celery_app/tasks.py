"""A Celery app whose tasks are counted and timed, exactly, across its prefork children.

    export APYTHEUS_BACKEND_CLASS=apytheus.backends.redis.RedisBackend
    export APYTHEUS_BACKEND_CONFIG='{"url": "redis://127.0.0.1:6379/0", "key_prefix": "jobs"}'
    export CELERY_BROKER_URL=redis://127.0.0.1:6379/1
    celery -A examples.celery_app.tasks worker --concurrency 4 --max-tasks-per-child 100
    python -m examples.celery_app.server --port 9100

The backend is selected by the environment at `import apytheus`, in the worker's
main process, before it forks its pool children: each child then flushes its own
deltas to Redis every second, and `apytheus.celery.install()` sends its last ones
when it exits (Celery ends its children with `os._exit`, which skips `atexit`).
The metrics server reads every child's numbers from Redis.
"""

from __future__ import annotations

import hashlib
import os

from celery import Celery

import apytheus.celery

from .metrics import TASK_DURATION, TASKS_DONE

BROKER = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
app = Celery("examples.celery_app", broker=BROKER, backend=BROKER)
app.conf.broker_connection_retry_on_startup = True

apytheus.celery.install()  # each pool child flushes a last time as it exits


@app.task
@TASK_DURATION.labels(task="checksum")  # times every call, errors included
def checksum(data: str, rounds: int = 1000) -> dict[str, object]:
    """Hash ``data`` ``rounds`` times; returns the digest and the pid of the child that ran it."""
    digest = data.encode()
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    TASKS_DONE.labels(task="checksum").inc()
    return {"digest": digest.hex(), "pid": os.getpid()}
