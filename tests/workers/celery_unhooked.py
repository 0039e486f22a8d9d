"""examples/celery_app without `apytheus.celery.install()`: what pool children lose without it.

celery -A celery_unhooked worker (with this folder on PYTHONPATH)
"""

from __future__ import annotations

from celery.signals import worker_process_shutdown  # type: ignore[import-untyped]

from apytheus.celery import DISPATCH_UID
from examples.celery_app.tasks import app

__all__ = ["app"]

worker_process_shutdown.disconnect(dispatch_uid=DISPATCH_UID)
