"""What the API plugins share: a User-Agent with the lab's contact, and OAuth client-credentials tokens.

Documented APIs are used on their own terms (``api=True`` on the polite client: no robots.txt,
the same pacing, retries and guards). Their terms ask for a descriptive User-Agent with a way to
reach the operator (Wikimedia's User-Agent policy), and some hand out higher limits — or access at
all — to registered applications that fetch a bearer token with their client id and secret
(RFC 6749 §4.4). Tokens are cached on the plugin instance, which lives as long as the process, and
renewed a minute before they expire or when the API answers 401.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from furrsight.scraping.contract import FetchError, ScrapeContext

RENEW_BEFORE = 60.0  # seconds before expiry a token is replaced


def api_user_agent(ctx: ScrapeContext) -> str:
    """The scrapers' User-Agent with the lab's contact (setting ``scraping.contact``) added."""
    agent = str(ctx.settings.get("user_agent") or "FurrSight")
    contact = str(ctx.settings.get("contact") or "").strip()
    if not contact or contact in agent:
        return agent
    if agent.endswith(")"):
        return f"{agent[:-1]}; {contact})"
    return f"{agent} ({contact})"


class CredentialsError(RuntimeError):
    """The service refused the registered application's credentials (the message names the settings)."""


@dataclass
class _Token:
    value: str
    expires_at: float


@dataclass
class ClientCredentials:
    """Bearer tokens of one registered application, fetched with the client-credentials grant.

    ``basic_auth``: send id and secret as HTTP Basic (Reddit) rather than in the form (Openverse).
    ``settings_hint`` names the settings, for the error a refusal turns into.
    """

    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    basic_auth: bool = False
    settings_hint: str = ""
    _token: _Token | None = field(default=None, repr=False)

    def invalidate(self) -> None:
        self._token = None

    async def header(self, ctx: ScrapeContext, headers: dict[str, str]) -> dict[str, str]:
        """``Authorization: Bearer …`` for the next request, fetching a token when needed."""
        if self._token is None or self._token.expires_at - RENEW_BEFORE <= time.monotonic():
            self._token = await self._fetch(ctx, headers)
        return {"Authorization": f"Bearer {self._token.value}"}

    async def _fetch(self, ctx: ScrapeContext, headers: dict[str, str]) -> _Token:
        form = {"grant_type": "client_credentials"}
        auth: tuple[str, str] | None = (self.client_id, self.client_secret)
        if not self.basic_auth:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
            auth = None
        try:
            response = await ctx.http.post_form(self.token_url, form, headers=headers, auth=auth)
        except FetchError as exc:
            raise CredentialsError(
                f"{self.token_url} refused the registered application ({exc.reason}): check {self.settings_hint}"
            ) from exc
        answer: Any = response.json()
        value = answer.get("access_token") if isinstance(answer, dict) else None
        if not value:
            raise CredentialsError(f"{self.token_url} answered no access_token: check {self.settings_hint}")
        ctx.log.info("new access token from %s (valid %s s)", self.token_url, answer.get("expires_in"))
        return _Token(str(value), time.monotonic() + float(answer.get("expires_in") or 3600))


class TokenCache:
    """One :class:`ClientCredentials` per (token URL, client id), kept on a plugin instance."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], ClientCredentials] = {}

    def get(self, token_url: str, client_id: str, client_secret: str, **kwargs: Any) -> ClientCredentials:
        key = (token_url, client_id)
        client = self._clients.get(key)
        if client is None or client.client_secret != client_secret:
            client = self._clients[key] = ClientCredentials(token_url, client_id, client_secret, **kwargs)
        return client
