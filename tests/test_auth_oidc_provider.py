"""Single sign-on against panva's oidc-provider, a certified OpenID Connect provider (npm), run by
Node.js on 127.0.0.1 (tests/oidc/provider.mjs), in its two ways of handing out the user's claims:
in the ID token (``conformIdTokenClaims: false``) and only from UserInfo (its default, as OpenID
Connect Core 5.4 asks when an access token is issued)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urljoin

import httpx
import msgspec
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client
from joserfc import jwt
from joserfc.jwk import KeySet
from litestar.testing import AsyncTestClient

from furrsight.auth import audit, service
from furrsight.settings import Settings
from tests import oidc
from tests.conftest import app_client, user_with_token

BASE = "http://testserver.local"
CALLBACK = f"{BASE}/auth/oidc/callback"
MODES = {"claims-in-id-token": False, "claims-in-userinfo": True}  # the mode -> conformIdTokenClaims

pytestmark = pytest.mark.skipif(
    oidc.missing() is not None and not oidc.IN_CI, reason=f"no oidc-provider: {oidc.missing()}"
)


def accounts(mode: str) -> dict[str, dict[str, Any]]:
    """The provider's users (login -> claims); names carry the mode: both modes share one database."""
    return {
        "curator": {
            "preferred_username": f"{mode}-kim", "name": "Kim Curator", "email": f"kim@{mode}.example",
            "email_verified": True, "groups": ["lab-staff", "lab-curators"],
        },
        "admin": {"email": f"ada@{mode}.example", "email_verified": True, "groups": ["lab-admins"]},
        "visitor": {"preferred_username": f"{mode}-vic", "groups": ["visitors"]},
        "liar": {"preferred_username": f"{mode}-liar", "groups": ["lab-admins"], "userinfo_sub": "curator"},
    }  # fmt: skip


@pytest.fixture(scope="module", params=list(MODES))
def provider(request: pytest.FixtureRequest) -> Iterator[tuple[str, oidc.NodeProvider]]:
    mode = request.param
    p = oidc.NodeProvider(accounts(mode), conform=MODES[mode], redirect_uri=CALLBACK).start()
    yield mode, p
    p.stop()


@pytest.fixture(scope="module")
async def sso_app(migrated: Settings, provider: tuple[str, oidc.NodeProvider]) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    await user_with_token("admin")  # past first run
    _, p = provider
    auth = msgspec.structs.replace(
        migrated.auth,
        oidc_issuer=p.issuer,
        oidc_client_id=p.client_id,
        oidc_client_secret=p.client_secret,
        oidc_scopes=["openid", "profile", "email", "groups"],
        oidc_group_roles=["lab-curators=curator", "lab-admins=admin"],
    )
    async with app_client(msgspec.structs.replace(migrated, auth=auth)) as test_client:
        yield test_client


@pytest.fixture
def sso(sso_app: AsyncTestClient) -> AsyncTestClient:  # type: ignore[type-arg]
    sso_app.cookies.clear()
    return sso_app


async def at_provider(issuer: str, url: str, login: str) -> str:
    """A browser at the provider: follow its redirects, sign in as ``login`` at the login step, and
    return where it finally sends the browser (the client's redirect URI)."""
    async with httpx.AsyncClient() as browser:  # keeps the provider's own cookies
        while url.startswith(issuer + "/"):
            if "/interaction/" in url:
                url += f"?login={login}"
            answer = await browser.get(url)
            assert answer.status_code in (302, 303), f"{url}: {answer.status_code} {answer.text}"
            url = urljoin(url, answer.headers["location"])
    return url


async def sign_in(client: AsyncTestClient, issuer: str, login: str) -> httpx.Response:  # type: ignore[type-arg]
    """/auth/oidc/login -> the provider (login and consent) -> /auth/oidc/callback."""
    begin = await client.get("/auth/oidc/login?next=/jobs", follow_redirects=False)
    assert begin.status_code == 302, begin.text
    callback = await at_provider(issuer, begin.headers["location"], login)
    assert callback.startswith(CALLBACK + "?"), callback
    return await client.get(callback, follow_redirects=False)


async def last_login(username: str) -> dict[str, Any]:
    entries = (await audit.list_entries(action="login", limit=50)).items
    return next(e.detail for e in entries if e.actor == username)


async def test_the_modes_differ_in_the_id_token(provider: tuple[str, oidc.NodeProvider]) -> None:
    """What the provider itself puts in the ID token: the claims, or only ``sub`` (fetched here
    with authlib as a client of its own, not through FurrSight)."""
    mode, p = provider
    meta = httpx.get(f"{p.issuer}/.well-known/openid-configuration").json()
    assert meta["userinfo_endpoint"] == f"{p.issuer}/me"
    async with AsyncOAuth2Client(
        p.client_id, p.client_secret, scope="openid profile email groups", redirect_uri=CALLBACK,
        code_challenge_method="S256",
    ) as client:  # fmt: skip
        verifier = "v" * 64
        url, _ = client.create_authorization_url(meta["authorization_endpoint"], nonce="n-1", code_verifier=verifier)
        callback = await at_provider(p.issuer, url, "curator")
        token = await client.fetch_token(
            meta["token_endpoint"], authorization_response=callback, code_verifier=verifier
        )
    keys = KeySet.import_key_set(httpx.get(meta["jwks_uri"]).json())
    claims = jwt.decode(token["id_token"], keys).claims
    profile = {k: claims.get(k) for k in ("preferred_username", "email", "groups")}
    if MODES[mode]:
        assert profile == {"preferred_username": None, "email": None, "groups": None}
    else:
        assert profile == {
            "preferred_username": f"{mode}-kim", "email": f"kim@{mode}.example", "groups": ["lab-staff", "lab-curators"]
        }  # fmt: skip
    assert claims["sub"] == "curator"


async def test_sign_in_takes_name_email_and_role_from_the_provider(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: tuple[str, oidc.NodeProvider],
) -> None:
    mode, p = provider
    done = await sign_in(sso, p.issuer, "curator")
    assert done.status_code == 303 and done.headers["location"] == "/jobs", done.text
    assert (await sso.get("/api/v1/me")).json() == {"username": f"{mode}-kim", "role": "curator", "via": "session"}
    user = await service.get_user(f"{mode}-kim")
    assert user.sso and user.role == "curator" and user.active
    assert await last_login(f"{mode}-kim") == {"method": "oidc", "email": f"kim@{mode}.example"}


async def test_an_account_without_a_user_name_is_named_after_its_email(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: tuple[str, oidc.NodeProvider],
) -> None:
    mode, p = provider
    assert (await sign_in(sso, p.issuer, "admin")).status_code == 303
    assert (await sso.get("/api/v1/me")).json() == {
        "username": f"ada@{mode}.example", "role": "admin", "via": "session"
    }  # fmt: skip


async def test_groups_that_map_to_no_role_give_the_default_role(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: tuple[str, oidc.NodeProvider],
) -> None:
    mode, p = provider
    assert (await sign_in(sso, p.issuer, "visitor")).status_code == 303
    assert (await sso.get("/api/v1/me")).json() == {"username": f"{mode}-vic", "role": "viewer", "via": "session"}
    assert await last_login(f"{mode}-vic") == {"method": "oidc", "email": None}


async def test_a_userinfo_about_another_user_is_refused(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: tuple[str, oidc.NodeProvider],
) -> None:
    mode, p = provider
    refused = await sign_in(sso, p.issuer, "liar")
    assert refused.status_code == 400
    assert "UserInfo is about another user (sub 'curator', the ID token's is 'liar')" in html.unescape(refused.text)
    assert (await sso.get("/api/v1/me")).status_code == 401
    with pytest.raises(service.AccountError):
        await service.get_user(f"{mode}-liar")


async def test_a_sign_in_the_provider_denies_is_refused_in_words(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: tuple[str, oidc.NodeProvider],
) -> None:
    _, p = provider
    refused = await sign_in(sso, p.issuer, "nobody")
    assert refused.status_code == 400
    assert "the identity provider refused the sign-in: access_denied" in refused.text
    assert (await sso.get("/api/v1/me")).status_code == 401
