"""What the auth parts share in one web process: sessions, throttle, OIDC client, CSRF config."""

from __future__ import annotations

import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.middleware import DefineMiddleware
from litestar.openapi.spec import Components, SecurityScheme
from litestar.stores.valkey import ValkeyStore

from furrsight.auth import service
from furrsight.auth.firstrun import ensure_setup_code
from furrsight.auth.middleware import AuthMiddleware, CSRFUnlessBearer, SecureCookies
from furrsight.auth.oidc import OIDC
from furrsight.auth.sessions import Sessions
from furrsight.auth.throttle import Throttle
from furrsight.settings import Settings

log = logging.getLogger("furrsight.auth")
# The OpenAPI spec says how scripts authenticate: `Authorization: Bearer <token>`.
OPENAPI_SECURITY: dict[str, Any] = {
    "security": [{"BearerToken": []}],
    "components": Components(
        security_schemes={
            "BearerToken": SecurityScheme(type="http", scheme="bearer", description="furrsight users token")
        }
    ),
}
CSRF_COOKIE = "furrsight_csrf"


def secret_key(settings: Settings) -> str:
    """A random secret kept in the data directory (mode 0600), made on first use."""
    path: Path = settings.data_path / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
        except FileExistsError:
            pass
    return path.read_text().strip()


def csrf_config(settings: Settings) -> CSRFConfig:
    return CSRFConfig(
        secret=secret_key(settings),
        cookie_name=CSRF_COOKIE,
        header_name="x-csrftoken",
        cookie_httponly=True,  # pages carry the token in their forms and hx-headers
        cookie_samesite="lax",
    )


def auth_middleware(settings: Settings) -> list[Any]:
    """Outermost first: Secure cookies on HTTPS, then who is asking, then CSRF."""
    return [SecureCookies, AuthMiddleware, DefineMiddleware(CSRFUnlessBearer, config=csrf_config(settings))]


class AuthState:
    def __init__(self, app: Litestar, settings: Settings) -> None:
        prefix = f"{settings.broker_namespace}:auth"
        self.settings = settings
        self.store = ValkeyStore(app.state.valkey, namespace=f"{prefix}:session")
        self.pending = ValkeyStore(app.state.valkey, namespace=f"{prefix}:oidc")
        self.sessions = Sessions(self.store, settings.auth)
        self.throttle = Throttle(app.state.valkey, settings.auth, prefix=f"{prefix}:fail")
        self.oidc = OIDC(settings.auth)
        self._has_users = False

    async def has_users(self) -> bool:
        """Whether any account exists; once true it stays true (accounts are disabled, not deleted)."""
        if not self._has_users:
            self._has_users = await service.count_users() > 0
        return self._has_users


async def auth_startup(app: Litestar) -> None:
    """Runs after the database and Valkey are open: shared state, and the first-run code."""
    settings: Settings = app.state.settings
    app.state.auth = AuthState(app, settings)
    code = await ensure_setup_code(settings)
    if code:
        announce_setup_code(code)


def announce_setup_code(code: str) -> None:
    print(
        f"\n  No account exists yet. Open /setup in a browser and enter the setup code: {code}\n",
        file=sys.stderr,
        flush=True,
    )
