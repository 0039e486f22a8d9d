"""STORE: telling wrong credentials or ACLs from an outage, and saying how to fix them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import redis.exceptions

# errors that retrying cannot cure: the credentials or the ACL are wrong (a config problem)
_AUTH_PREFIXES = ("NOAUTH", "WRONGPASS", "NOPERM")
_SCRIPT_ACL = "user executing the script can't"  # an ACL refusal inside a Lua script


def is_auth_error(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the credentials or the ACL are wrong."""
    return _auth_error(exc) is not None


def _auth_error(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # a cluster client wraps the cause
        seen.add(id(current))
        if isinstance(
            current,
            redis.exceptions.AuthenticationError
            | redis.exceptions.AuthenticationWrongNumberOfArgsError
            | redis.exceptions.NoPermissionError,
        ):
            return current
        if isinstance(current, redis.exceptions.ResponseError) and (
            str(current).startswith(_AUTH_PREFIXES) or _SCRIPT_ACL in str(current)
        ):
            return current
        current = current.__cause__ or current.__context__
    return None


def auth_problem(exc: BaseException, config: Mapping[str, Any]) -> str | None:
    """What is wrong and how to fix it, if ``exc`` is an authentication or ACL error.

    The message names the server (its address without the password) and never
    contains the password.
    """
    error = _auth_error(exc)
    if error is None:
        return None
    where = redacted_location(config)
    password = _password(config)
    reply = str(error)
    if password:
        reply = reply.replace(password, "***")
    text = reply.lower()
    if isinstance(error, redis.exceptions.AuthenticationWrongNumberOfArgsError):
        what = (
            f"Redis at {where} refused AUTH with a username (a server older than 6.0 "
            "has no ACL users)"
        )
        fix = "leave `username` out of the backend config, or upgrade Redis"
    elif (
        isinstance(error, redis.exceptions.NoPermissionError)
        or text.startswith("noperm")
        or _SCRIPT_ACL in text
    ):
        what = f"the Redis ACL user of {where} may not run a command apytheus needs"
        fix = (
            "grant that user the commands and key patterns listed in the Security "
            "section of the multiprocess docs (ACL SETUSER)"
        )
    elif "without any password configured" in text or "no password is set" in text:
        what = f"the backend config gives a password, but Redis at {where} has none set"
        fix = "remove the password from the backend config, or set one in Redis (requirepass)"
    elif not password or "authentication required" in text or "noauth" in text:
        what = f"Redis at {where} requires a password, and the backend config gives none"
        fix = (
            'give it: "url": "redis://:PASSWORD@host:6379/0", or the "password" '
            '(and "username" for an ACL user) option'
        )
    else:
        what = f"Redis at {where} refused the username/password of the backend config"
        fix = (
            'check "password" (and "username" for an ACL user), in the "url" '
            "(redis://USER:PASSWORD@host) or as options"
        )
    return f"{what} ({type(error).__name__}: {reply}); {fix}"


def _password(config: Mapping[str, Any]) -> str | None:
    url = config.get("url")
    if url:
        try:
            found = urlsplit(str(url)).password
        except ValueError:
            found = None
        if found:
            return unquote(found)
    password = config.get("password")
    return str(password) if password else None


def redacted_location(config: Mapping[str, Any]) -> str:
    """Where the config points, as a URL without password or query (safe to log)."""
    url = config.get("url")
    if url:
        try:
            parts = urlsplit(str(url))
            user = f"{parts.username}@" if parts.username else ""
            host = parts.hostname or ""
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            return "<the configured url>"
        return f"{parts.scheme}://{user}{host}{port}{parts.path}"
    scheme = "rediss" if config.get("ssl") else "redis"
    sentinels = config.get("sentinels")
    if sentinels:
        hosts = ",".join(f"{host}:{port}" for host, port in sentinels)
        return f"sentinel://{hosts}/{config.get('service_name', '')}"
    if config.get("unix_socket_path"):
        return f"unix://{config['unix_socket_path']}"
    user = f"{config['username']}@" if config.get("username") else ""
    host = config.get("host", "localhost")
    return f"{scheme}://{user}{host}:{config.get('port', 6379)}/{config.get('db', 0)}"
