"""Single sign-on against a real OpenID Connect provider on loopback (tests/oidc_provider.py)."""

from __future__ import annotations

import html
from collections.abc import AsyncIterator, Iterator

import httpx
import msgspec
import pytest
from litestar.testing import AsyncTestClient

from furrsight.auth import audit, service
from furrsight.settings import Settings
from tests.conftest import app_client, user_with_token
from tests.oidc_provider import Provider

BASE = "http://testserver.local"
pytestmark = pytest.mark.filterwarnings("ignore:The 'grant' parameter will become mandatory")


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    p = Provider().start()
    p.client.redirect_uris.append(f"{BASE}/auth/oidc/callback")
    yield p
    p.stop()


@pytest.fixture(scope="module")
async def sso_app(migrated: Settings, provider: Provider) -> AsyncIterator[AsyncTestClient]:  # type: ignore[type-arg]
    await user_with_token("admin")  # past first run
    auth = msgspec.structs.replace(
        migrated.auth,
        oidc_issuer=provider.issuer,
        oidc_client_id=provider.client.client_id,
        oidc_client_secret=provider.client.client_secret,
        oidc_group_roles=["lab-curators=curator", "lab-admins=admin"],
        oidc_button_label="Lab SSO",
    )
    async with app_client(msgspec.structs.replace(migrated, auth=auth)) as test_client:
        yield test_client


@pytest.fixture
def sso(sso_app: AsyncTestClient, provider: Provider) -> AsyncTestClient:  # type: ignore[type-arg]
    sso_app.cookies.clear()
    provider.tamper = None
    return sso_app


async def start(client: AsyncTestClient, next_url: str = "/jobs") -> str:  # type: ignore[type-arg]
    """Begin at FurrSight, let the provider approve; returns the callback URL it sends back."""
    begin = await client.get(f"/auth/oidc/login?next={next_url}", follow_redirects=False)
    assert begin.status_code == 302, begin.text
    assert "code_challenge_method=S256" in begin.headers["location"]
    assert "nonce=" in begin.headers["location"]
    async with httpx.AsyncClient() as http:
        approved = await http.get(begin.headers["location"])
    assert approved.status_code == 302, approved.text
    return approved.headers["location"]


async def test_login_page_offers_the_sso_button(sso: AsyncTestClient) -> None:  # type: ignore[type-arg]
    page = await sso.get("/login")
    assert "Sign in with Lab SSO" in page.text


async def test_good_sign_in_creates_the_account_with_the_mapped_role(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: Provider,
) -> None:
    provider.user = {"sub": "sso-good", "preferred_username": "sso-good", "groups": ["lab-curators"]}
    done = await sso.get(await start(sso), follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/jobs"
    me = (await sso.get("/api/v1/me")).json()
    assert me == {"username": "sso-good", "role": "curator", "via": "session"}
    user = await service.get_user("sso-good")
    assert user.sso and user.role == "curator"
    logins = await audit.list_entries(action="login", limit=20)
    assert any(e.actor == "sso-good" and e.detail.get("method") == "oidc" for e in logins.items)


async def test_wrong_state_is_refused(sso: AsyncTestClient, provider: Provider) -> None:  # type: ignore[type-arg]
    provider.user = {"sub": "sso-state", "preferred_username": "sso-state"}
    callback = await start(sso)
    forged = callback.replace("state=", "state=forged")
    refused = await sso.get(forged, follow_redirects=False)
    assert refused.status_code == 400
    assert "state does not match" in refused.text
    assert (await sso.get("/api/v1/me")).status_code == 401


async def test_a_callback_cannot_be_replayed(sso: AsyncTestClient, provider: Provider) -> None:  # type: ignore[type-arg]
    provider.user = {"sub": "sso-replay", "preferred_username": "sso-replay"}
    callback = await start(sso)
    assert (await sso.get(callback, follow_redirects=False)).status_code == 303
    sso.cookies.clear()
    again = await sso.get(callback, follow_redirects=False)
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("tamper", "message"),
    [
        ("nonce", "nonce"),
        ("expired", "expired"),
        ("otherkey", "signature does not match"),
        ("userinfo-sub", "UserInfo is about another user (sub 'someone-else', the ID token's is 'sso-userinfo-sub')"),
        ("userinfo-refused", "UserInfo endpoint answered HTTP 401 to the access token, not the user's claims"),
    ],
)
async def test_bad_id_tokens_and_userinfo_are_refused(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: Provider,
    tamper: str,
    message: str,
) -> None:
    provider.user = {"sub": f"sso-{tamper}", "preferred_username": f"sso-{tamper}"}
    callback = await start(sso)
    provider.tamper = tamper
    refused = await sso.get(callback, follow_redirects=False)
    assert refused.status_code == 400
    assert message in html.unescape(refused.text)
    assert (await sso.get("/api/v1/me")).status_code == 401
    with pytest.raises(service.AccountError):
        await service.get_user(f"sso-{tamper}")


async def test_user_disabled_after_sign_in_is_locked_out(
    sso: AsyncTestClient,  # type: ignore[type-arg]
    provider: Provider,
) -> None:
    provider.user = {"sub": "sso-disabled", "preferred_username": "sso-disabled"}
    assert (await sso.get(await start(sso), follow_redirects=False)).status_code == 303
    assert (await sso.get("/api/v1/me")).json()["role"] == "viewer"  # the default role
    await service.set_active("sso-disabled", False, actor="test")
    assert (await sso.get("/api/v1/me")).status_code == 401
    page = await sso.get("/images", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")
    again = await sso.get(await start(sso), follow_redirects=False)
    assert again.status_code == 400 and "disabled" in again.text


async def test_a_discovery_document_for_another_issuer_is_refused(provider: Provider) -> None:
    from furrsight.auth.oidc import OIDC, OIDCError
    from furrsight.settings import AuthSettings

    wrong = OIDC(
        AuthSettings(
            oidc_issuer="https://login.example.org",
            oidc_discovery_url=f"{provider.issuer}/.well-known/openid-configuration",
            oidc_client_id="furrsight",
        )
    )
    with pytest.raises(OIDCError, match="names the issuer"):
        await wrong.metadata()


def test_role_from_claim_or_groups_highest_wins() -> None:
    from furrsight.auth.oidc import OIDC
    from furrsight.settings import AuthSettings

    oidc = OIDC(
        AuthSettings(oidc_role_claim="fs_role", oidc_group_roles=["lab=viewer", "leads=admin", "staff=curator"])
    )
    assert oidc.role_for({"fs_role": "curator"}) == "curator"
    assert oidc.role_for({"fs_role": "emperor"}) is None  # not a role: ignored
    assert oidc.role_for({"groups": ["lab", "staff"]}) == "curator"
    assert oidc.role_for({"groups": "leads", "fs_role": "viewer"}) == "admin"
    assert oidc.role_for({"groups": ["visitors"]}) is None  # then: the default role for a new account
