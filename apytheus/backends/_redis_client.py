"""STORE: the connection config, and the redis-py clients that find the master.

Three kinds of config: one server (``url``, or ``host``/``port``), Sentinel
(``sentinels`` and ``service_name``), and Redis Cluster (``cluster``). A
`Connector` makes the store's clients and, after a failover, finds the master
again (see `Connector.demoted`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..exceptions import InvalidBackendConfigException
from ._redis_auth import auth_problem, is_auth_error, redacted_location

log = logging.getLogger("apytheus")

TRANSIENT = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
)

_SENTINEL_OPTIONS = ("sentinels", "service_name", "sentinel_username", "sentinel_password")


class NotReplicated(redis.exceptions.RedisError):
    """The batch was applied, but fewer replicas than ``replicas`` confirmed it (``WAIT``)."""


def execute(pipe: Any) -> list[Any]:
    """Run a pipeline; an error is returned in place of its command's reply.

    The errors lose their tracebacks: a traceback holds the frames that made
    the batch, which hold the errors, and that cycle would keep every metric
    of the batch alive until the cyclic garbage collector runs.
    """
    results: list[Any] = pipe.execute(raise_on_error=False)
    for result in results:
        if isinstance(result, BaseException):
            result.__traceback__ = None
    return results


# The errors that retrying cannot cure, for one metric's keys: what they mean.
_PERMANENT = {
    "WRONGTYPE": "a key of another type under the key prefix",
    "holds no number": "a field that holds no number",  # FLUSH_SCRIPT's own error
}


def permanent_reason(error: object) -> str | None:
    """Why ``error`` (a script's reply) can never succeed for its metric, or None.

    Only a key of another type, or a field that holds no number, is proven
    permanent; every other error (``OOM``, ``BUSY``, ``READONLY``, a lost
    connection, one nobody foresaw) may pass, so its batch is sent again.
    """
    if not isinstance(error, redis.exceptions.ResponseError) or is_auth_error(error):
        return None
    if isinstance(error, TRANSIENT):
        return None
    text = str(error)
    for marker, reason in _PERMANENT.items():
        if marker in text:
            return reason
    return None


def close_client(client: Any) -> None:
    for node in client.get_nodes() if hasattr(client, "get_nodes") else ():
        if node.redis_connection is not None:  # RedisCluster.close() leaves these open
            node.redis_connection.connection_pool.disconnect()
    client.close()


def ping_once(make_client: Callable[[], Any]) -> None:
    """Connect with a client of its own, send one PING, disconnect (blocking).

    Raises:
        redis.exceptions.RedisError: what connecting or the PING raised.
    """
    client = make_client()
    try:
        client.ping()
    finally:
        close_client(client)


def check_credentials(make_client: Callable[[], Any], config: Mapping[str, Any]) -> None:
    """Connect and PING once (blocking): a wrong password or ACL stops the app's startup.

    Raises:
        InvalidBackendConfigException: Redis refused the credentials, or the ACL
            user may not run PING: a config error, which no retry cures.

    An unreachable Redis is only logged: the flusher keeps the deltas and
    retries, so an outage at startup never stops the app.
    """
    try:
        ping_once(make_client)
    except Exception as exc:
        problem = auth_problem(exc, config)
        if problem is not None:
            raise InvalidBackendConfigException(f"apytheus: {problem}") from None
        log.warning(
            "apytheus: Redis at %s does not answer at startup (%s); starting anyway: "
            "the deltas stay buffered and the flusher retries",
            redacted_location(config),
            exc,
        )


class Connector:
    """Makes redis-py sync clients from the config, and follows the master.

    * Sentinel: redis-py's pool asks the sentinels for the master's address on
      every new connection, and drops a connection whose server answers
      ``READONLY`` (it was demoted): failovers need nothing more.
    * One server: a server that answers ``READONLY`` was demoted to a replica.
      `demoted` asks it (``ROLE``) where its master is, and the clients made
      afterwards connect there. Once that address fails too, clients go back to
      the configured one.
    * Cluster: redis-py follows the slots (``MOVED``) itself.

    ``retries`` (if given) replaces redis-py's retry policy: ``0`` makes
    clients that try once (the startup check's).
    """

    def __init__(self, config: Mapping[str, Any], retries: int | None = None) -> None:
        options = dict(config)
        self.cluster = bool(options.pop("cluster", False))
        self.url: str | None = options.pop("url", None)
        self.sentinels: list[tuple[str, int]] = [
            (str(h), int(p)) for h, p in options.pop("sentinels", None) or ()
        ]
        self.service_name = str(options.pop("service_name", ""))
        self.sentinel_options = {
            k[len("sentinel_") :]: options.pop(k)
            for k in ("sentinel_username", "sentinel_password")
            if k in options
        }
        self.options: dict[str, Any] = {
            "socket_timeout": 5.0,
            "socket_connect_timeout": 5.0,
            **options,
        }
        if retries is not None:
            self.options["retry"] = Retry(NoBackoff(), retries)
        self.followed: tuple[str, int] | None = None  # a demoted server's master
        if not self.cluster:
            self._plain()  # checks the options now (no I/O), not at first use

    def __call__(self) -> Any:
        """A new client (a cluster client connects as it is made)."""
        if self.cluster:
            from redis.cluster import RedisCluster

            if self.url:
                return RedisCluster.from_url(self.url, **self.options)
            return RedisCluster(**self.options)
        if self.sentinels:
            from redis.sentinel import Sentinel

            sentinel_kwargs = {
                k: v for k, v in self.options.items() if k.startswith("socket_")
            } | self.sentinel_options
            sentinel = Sentinel(self.sentinels, sentinel_kwargs=sentinel_kwargs, **self.options)
            return sentinel.master_for(self.service_name)
        client = self._plain()
        if self.followed is not None:
            kwargs = client.connection_pool.connection_kwargs
            kwargs["host"], kwargs["port"] = self.followed
        return client

    def _plain(self) -> redis.Redis:
        if self.url:
            return redis.Redis.from_url(self.url, **self.options)
        return redis.Redis(**self.options)

    def demoted(self, client: Any) -> str:
        """A server answered ``READONLY``: find its master. Says what was found, for the log."""
        if self.cluster or self.sentinels:
            return "redis-py asks for the master again"
        if "unix_socket_path" in self.options:
            return "a Unix socket cannot be followed to another host"
        try:
            role = client.execute_command("ROLE")
            _role_name(role)
        except redis.exceptions.RedisError as exc:
            self.followed = None
            return f"asking it for its master failed ({exc}); trying the configured address again"
        kind = _role_name(role)
        if kind not in ("slave", "replica"):
            self.followed = None
            return f"it is a {kind} now; trying the configured address again"
        host = role[1].decode() if isinstance(role[1], bytes) else str(role[1])
        candidate = (host, int(role[2]))
        self.followed = candidate
        try:
            found = _role(self())  # the address the replica gave: is it a master, for us?
        except redis.exceptions.RedisError as exc:
            found = f"unreachable ({exc})"
        if found != "master":
            self.followed = None
            return (
                f"it names {host}:{role[2]} as its master, which is {found} from here; "
                "trying the configured address again"
            )
        return f"it is a replica of {host}:{role[2]} now, where the next flush goes"

    def unreachable(self) -> None:
        """The followed master does not answer: go back to the configured address."""
        if self.followed is not None:
            log.warning(
                "apytheus: the master followed at %s:%s does not answer; "
                "connecting to the configured Redis again",
                *self.followed,
            )
            self.followed = None


def _role_name(role: Any) -> str:
    kind = role[0]
    return kind.decode() if isinstance(kind, bytes) else str(kind)


def _role(client: Any) -> str:
    """``master``, ``slave`` or ``sentinel``: what ``ROLE`` says (blocking; closes the client)."""
    try:
        return _role_name(client.execute_command("ROLE"))
    finally:
        close_client(client)


def seconds_option(options: dict[str, Any], name: str, default: float) -> float:
    """Pop a number of seconds from the config, or say which option is wrong."""
    raw = options.pop(name, default)
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(f"{name} must be a number of seconds, not {raw!r}")
    return float(raw)


def check_connection_options(options: dict[str, Any]) -> None:
    """Refuse connection options of the wrong type now, not at the first flush."""
    url = options.get("url")
    if url is not None and not (isinstance(url, str) and "://" in url):
        raise ValueError(f"url must be a string like redis://host:6379/0, not {url!r}")
    if isinstance(url, str) and url.startswith("sentinel"):
        raise ValueError(
            'Sentinel is configured with "sentinels": [[host, port], ...] and '
            f'"service_name", not a url ({url.split("://")[0]}://)'
        )
    for name in ("port", "db"):
        value = options.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
    if any(name in options for name in _SENTINEL_OPTIONS):
        _check_sentinel_options(options)


def _check_sentinel_options(options: dict[str, Any]) -> None:
    sentinels = options.get("sentinels")
    if not isinstance(sentinels, list | tuple) or not sentinels:
        raise ValueError(f"sentinels must be a list of [host, port] pairs, not {sentinels!r}")
    for pair in sentinels:
        if (
            not isinstance(pair, list | tuple)
            or len(pair) != 2
            or not isinstance(pair[0], str)
            or isinstance(pair[1], bool)
            or not isinstance(pair[1], int)
        ):
            raise ValueError(f"each of sentinels must be a [host, port] pair, not {pair!r}")
    service = options.get("service_name")
    if not isinstance(service, str) or not service:
        raise ValueError(
            f"service_name (the master's name in Sentinel) is required, not {service!r}"
        )
    for name in ("sentinel_username", "sentinel_password"):
        if name in options and not isinstance(options[name], str):
            raise ValueError(f"{name} must be a string")
    clash = [n for n in ("url", "host", "port", "unix_socket_path", "cluster") if n in options]
    if clash:
        raise ValueError(f"sentinels find the master themselves: leave out {', '.join(clash)}")


def replicas_option(options: dict[str, Any]) -> tuple[int, float]:
    """Pop ``replicas`` and ``replicas_timeout`` (seconds), or say which is wrong."""
    replicas = options.pop("replicas", 0)
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be a whole number >= 0, not {replicas!r}")
    timeout = seconds_option(options, "replicas_timeout", 1.0)
    if not 0 < timeout <= 60:
        raise ValueError("replicas_timeout must be between 0 and 60 seconds")
    if replicas and options.get("cluster"):
        raise ValueError(
            "replicas is not supported with cluster: WAIT confirms one node's writes, "
            "and a batch spans many"
        )
    socket_timeout = options.get("socket_timeout", 5.0)
    if replicas and isinstance(socket_timeout, int | float) and socket_timeout <= timeout:
        raise ValueError("replicas_timeout must be shorter than socket_timeout")
    return replicas, timeout
