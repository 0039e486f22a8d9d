"""RECORD: a metric's state (family), its handles, value checks and timers.

The public types in `apytheus.metrics` are built from these; recording on them
writes into the per-thread cells of ``apytheus.backends._series``.
"""
