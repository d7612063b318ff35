"""OpenID Connect sign-in: authorisation-code flow with PKCE (S256), state and nonce.

authlib makes the authorisation URL and exchanges the code; joserfc checks the ID token's
signature against the provider's published keys (JWKS) and its iss, aud, exp and nonce. Then the
provider's UserInfo endpoint is asked for the profile, email and group claims: providers that
follow OpenID Connect Core 5.4 put only ``sub`` in the ID token when an access token is issued.
"""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
import msgspec
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from furrsight.auth.roles import RANK
from furrsight.settings import AuthSettings

ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
CACHE_SECONDS = 3600
# Claims about the token itself: they come from the verified ID token, never from UserInfo.
TOKEN_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "nonce", "azp", "auth_time", "at_hash", "c_hash", "jti", "sid"}
)


class OIDCError(Exception):
    """Sign-in with the provider failed; the message says why (shown to the user)."""


class Pending(msgspec.Struct):
    """What the callback must find again: kept server-side under the state, for 10 minutes."""

    state: str
    nonce: str
    verifier: str
    next: str


class OIDC:
    def __init__(self, settings: AuthSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        self.timeout = timeout
        self._metadata: dict[str, Any] | None = None
        self._keys: KeySet | None = None
        self._fetched = 0.0

    @property
    def enabled(self) -> bool:
        return bool((self.settings.oidc_issuer or self.settings.oidc_discovery_url) and self.settings.oidc_client_id)

    def _discovery_url(self) -> str:
        s = self.settings
        return s.oidc_discovery_url or s.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration"

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url)
                response.raise_for_status()
                return dict(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            raise OIDCError(f"the identity provider did not answer at {url}: {exc}") from exc

    async def metadata(self) -> dict[str, Any]:
        if self._metadata is None or time.monotonic() - self._fetched > CACHE_SECONDS:
            meta = await self._get_json(self._discovery_url())
            configured = self.settings.oidc_issuer.rstrip("/")
            if configured and str(meta.get("issuer", "")).rstrip("/") != configured:
                raise OIDCError(f"the discovery document names the issuer {meta.get('issuer')!r}, not {configured!r}")
            self._metadata = meta
            self._keys = None
            self._fetched = time.monotonic()
        return self._metadata

    async def keys(self, refresh: bool = False) -> KeySet:
        if self._keys is None or refresh:
            jwks = await self._get_json((await self.metadata())["jwks_uri"])
            self._keys = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
        return self._keys

    def _client(self, redirect_uri: str) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.oidc_client_id,
            client_secret=self.settings.oidc_client_secret,
            scope=" ".join(self.settings.oidc_scopes),
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout,
        )

    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, Pending]:
        meta = await self.metadata()
        pending = Pending(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48), next_url)
        async with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(
                meta["authorization_endpoint"], state=pending.state, nonce=pending.nonce, code_verifier=pending.verifier
            )
        return url, pending

    async def finish(self, code: str, pending: Pending, redirect_uri: str) -> dict[str, Any]:
        """Exchange the code; return the verified ID token's claims merged with UserInfo's."""
        meta = await self.metadata()
        try:
            async with self._client(redirect_uri) as client:
                token = await client.fetch_token(
                    meta["token_endpoint"], code=code, code_verifier=pending.verifier, redirect_uri=redirect_uri
                )
        except Exception as exc:  # authlib raises OAuthError, httpx its own
            raise OIDCError(f"the identity provider refused the code: {exc}") from exc
        id_token = token.get("id_token")
        if not id_token:
            raise OIDCError("the identity provider sent no ID token (is the 'openid' scope asked for?)")
        claims = await self.verify(id_token, pending.nonce, meta["issuer"])
        if meta.get("userinfo_endpoint") and token.get("access_token"):
            userinfo = await self.userinfo(meta["userinfo_endpoint"], token["access_token"])
            if userinfo.get("sub") != claims["sub"]:
                raise OIDCError(
                    f"the identity provider's UserInfo is about another user (sub {userinfo.get('sub')!r}, "
                    f"the ID token's is {claims['sub']!r}): sign-in refused"
                )
            claims.update({k: v for k, v in userinfo.items() if k not in TOKEN_CLAIMS})
        return claims

    async def userinfo(self, url: str, access_token: str) -> dict[str, Any]:
        """The UserInfo response (OpenID Connect Core 5.3): a JSON object about the signed-in user."""
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                response = await client.get(url, headers={"Authorization": f"Bearer {access_token}"})
        except httpx.HTTPError as exc:
            raise OIDCError(f"the identity provider's UserInfo endpoint did not answer at {url}: {exc}") from exc
        if response.status_code != 200:
            raise OIDCError(
                f"the identity provider's UserInfo endpoint answered HTTP {response.status_code} to the access "
                "token, not the user's claims"
            )
        if not response.headers.get("content-type", "").startswith("application/json"):
            # A signed or encrypted UserInfo (application/jwt) is only sent to clients registered for one.
            raise OIDCError(
                f"the identity provider's UserInfo answer is {response.headers.get('content-type')!r}, not JSON: "
                "register FurrSight's client without signed or encrypted UserInfo responses"
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise OIDCError(f"the identity provider's UserInfo answer is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise OIDCError("the identity provider's UserInfo answer is not a JSON object")
        return body

    async def verify(self, id_token: str, nonce: str, issuer: str) -> dict[str, Any]:
        try:
            try:
                decoded = jwt.decode(id_token, await self.keys(), algorithms=ALGORITHMS)
            except (JoseError, ValueError):  # a key rotated since we fetched the set: fetch once more
                decoded = jwt.decode(id_token, await self.keys(refresh=True), algorithms=ALGORITHMS)
        except (JoseError, ValueError) as exc:
            raise OIDCError(f"the ID token's signature does not match the provider's keys ({exc})") from exc
        registry = jwt.JWTClaimsRegistry(
            iss={"essential": True, "value": issuer},
            aud={"essential": True, "value": self.settings.oidc_client_id},
            exp={"essential": True},
            sub={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            registry.validate(decoded.claims)
        except JoseError as exc:
            raise OIDCError(f"the ID token is not valid: {exc}") from exc
        return dict(decoded.claims)

    def role_for(self, claims: dict[str, Any]) -> str | None:
        """The role a claim or a group mapping names (the highest wins), else None."""
        s = self.settings
        found: list[str] = []
        if s.oidc_role_claim and claims.get(s.oidc_role_claim) in RANK:
            found.append(claims[s.oidc_role_claim])
        groups = claims.get(s.oidc_groups_claim) or []
        groups = [groups] if isinstance(groups, str) else groups
        for entry in s.oidc_group_roles:
            group, _, role = entry.partition("=")
            if group.strip() in groups and role.strip() in RANK:
                found.append(role.strip())
        return max(found, key=RANK.__getitem__) if found else None
