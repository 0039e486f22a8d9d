"""A Celery worker whose prefork children count and time their tasks in one Redis."""
