"""Experimental parts of apytheus: they may change in any release, without deprecation.

`apytheus.experimental.compatibility` runs code written for prometheus_client
on apytheus (``patch_client``, as pytheus has it).
"""

from __future__ import annotations

__all__: list[str] = []
