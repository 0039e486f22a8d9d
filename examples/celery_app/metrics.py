"""The task metrics: defined once, imported by the worker and by the metrics server.

The server records nothing, but it must know the metrics to read them from Redis.
"""

from __future__ import annotations

from apytheus import Counter, Histogram

TASKS_DONE = Counter(
    "celery_tasks_done", "Tasks that finished without an error, by task.", ["task"]
)
TASK_DURATION = Histogram(
    "celery_task_duration_seconds",
    "Time a task's body took, errors included, by task.",
    ["task"],
    buckets=[0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5],
)
