"""Optional protection of the metrics endpoint: basic auth or a bearer token."""

from __future__ import annotations

import base64
import hmac


class Credentials:
    """What an ``Authorization`` header must hold (compared in constant time)."""

    def __init__(
        self, bearer_token: str | None = None, basic_auth: tuple[str, str] | None = None
    ) -> None:
        self.expected: list[bytes] = []
        if bearer_token is not None:
            if not bearer_token:
                raise ValueError("bearer_token must not be empty")
            self.expected.append(f"Bearer {bearer_token}".encode())
        if basic_auth is not None:
            user, password = basic_auth
            if ":" in user:
                raise ValueError("a basic-auth user name cannot contain ':'")
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.expected.append(f"Basic {pair}".encode())
        self.challenge = 'Basic realm="metrics"' if basic_auth is not None else "Bearer"

    def allows(self, header: str | None) -> bool:
        """Whether ``header`` (the request's Authorization value) matches."""
        given = (header or "").strip().encode("latin-1", "replace")
        # compare with every accepted value, so timing does not tell which one is set
        return any([hmac.compare_digest(given, e) for e in self.expected])  # noqa: C419


def credentials(bearer_token: str | None, basic_auth: tuple[str, str] | None) -> Credentials | None:
    """Credentials when any is given, else None (no protection)."""
    if bearer_token is None and basic_auth is None:
        return None
    return Credentials(bearer_token, basic_auth)
