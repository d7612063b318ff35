"""A real OpenID Connect provider on a loopback port, for the tests: authlib's server components
(authorisation-code grant, PKCE, OpenID Code extension) behind ``http.server`` in a thread.

It signs in ``provider.user`` without asking (there is no login screen) and answers UserInfo with
the same claims. ``provider.tamper`` makes it lie on purpose: ``"nonce"`` (another nonce),
``"expired"`` (exp in the past), ``"otherkey"`` (signed by a key that is not in its JWKS, under
the published key id) in the ID token; ``"userinfo-sub"`` (UserInfo about another ``sub``) and
``"userinfo-refused"`` (UserInfo answers 401 to a good access token).
The real third-party provider, panva's oidc-provider, runs in tests/test_auth_oidc_provider.py;
this one stays for the lies a certified provider will not tell.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from authlib.oauth2.rfc6749 import AuthorizationServer, ClientMixin, OAuth2Request
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload
from authlib.oauth2.rfc6750 import BearerTokenGenerator
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin
from authlib.oidc.core.grants import OpenIDCode
from joserfc import jwt
from joserfc.jwk import RSAKey

KID = "test-key-1"


@dataclass
class Client(ClientMixin):
    client_id: str
    client_secret: str
    redirect_uris: list[str]

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> str:
        return self.redirect_uris[0]

    def get_allowed_scope(self, scope: str) -> str:
        return scope

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris

    def check_client_secret(self, client_secret: str) -> bool:
        return client_secret == self.client_secret

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass
class Code(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    user: dict[str, Any]
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None
    auth_time: int = field(default_factory=lambda: int(time.time()))

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time

    def get_acr(self) -> str:
        return "0"

    def get_amr(self) -> list[str]:
        return ["pwd"]


class Request(OAuth2Request):
    def __init__(self, method: str, uri: str, headers: Any, data: dict[str, str]) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = BasicOAuth2Payload(data)
        self._data = data

    @property
    def args(self) -> dict[str, str]:
        return self._data

    @property
    def form(self) -> dict[str, str]:
        return self._data


class Provider:
    def __init__(self, client_id: str = "furrsight", client_secret: str = "s3cret") -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.issuer = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.key = RSAKey.generate_key(2048, parameters={"kid": KID, "use": "sig", "alg": "RS256"})
        self.other_key = RSAKey.generate_key(2048, parameters={"kid": KID})
        self.client = Client(client_id, client_secret, [])
        self.codes: dict[str, Code] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # access token -> the user it was issued for
        self.user: dict[str, Any] = {"sub": "u-1", "preferred_username": "alice"}
        self.tamper: str | None = None
        self.server = _server(self)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> Provider:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "jwks_uri": f"{self.issuer}/jwks",
            "userinfo_endpoint": f"{self.issuer}/userinfo",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def tampered(self, id_token: str) -> str:
        """Re-sign the ID token as ``self.tamper`` asks."""
        claims = dict(jwt.decode(id_token, self.key).claims)
        key = self.key
        if self.tamper == "nonce":
            claims["nonce"] = "not-the-nonce-you-sent"
        elif self.tamper == "expired":
            claims["iat"], claims["exp"] = int(time.time()) - 7200, int(time.time()) - 3600
        elif self.tamper == "otherkey":
            key = self.other_key
        return jwt.encode({"alg": "RS256", "kid": KID}, claims, key)


def _server(provider: Provider) -> AuthorizationServer:
    class Server(AuthorizationServer):  # type: ignore[misc]
        def query_client(self, client_id: str) -> Client | None:
            return provider.client if client_id == provider.client.client_id else None

        def save_token(self, token: dict[str, Any], request: Request) -> None:
            provider.tokens[token["access_token"]] = dict(request.user)

        def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
            pass

        def create_oauth2_request(self, request: Request) -> Request:
            return request

        def handle_response(self, status: int, body: Any, headers: Any) -> tuple[int, Any, Any]:
            return status, body, headers

    class Grant(AuthorizationCodeGrant):  # type: ignore[misc]
        TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

        def save_authorization_code(self, code: str, request: Request) -> None:
            data = request.payload.data
            provider.codes[code] = Code(
                code, request.client.get_client_id(), data.get("redirect_uri", ""), data.get("scope", ""),
                dict(request.user), data.get("nonce"), data.get("code_challenge"), data.get("code_challenge_method"),
            )  # fmt: skip

        def query_authorization_code(self, code: str, client: Client) -> Code | None:
            found = provider.codes.get(code)
            return found if found and found.client_id == client.get_client_id() else None

        def delete_authorization_code(self, authorization_code: Code) -> None:
            provider.codes.pop(authorization_code.code, None)

        def authenticate_user(self, authorization_code: Code) -> dict[str, Any]:
            return authorization_code.user

    class OpenID(OpenIDCode):  # type: ignore[misc]
        def exists_nonce(self, nonce: str, request: Request) -> bool:
            return False

        def resolve_client_private_key(self, client: Client) -> RSAKey:
            return provider.key

        def get_client_algorithm(self, client: Client) -> str:
            return "RS256"

        def get_encode_header(self, client: Client) -> dict[str, str]:
            return {"alg": "RS256", "kid": KID}

        def get_client_claims(self, client: Client) -> dict[str, Any]:
            return {"iss": provider.issuer, "aud": [client.get_client_id()]}

        def generate_user_info(self, user: dict[str, Any], scope: str) -> dict[str, Any]:
            return dict(user)

    server = Server()
    server.register_token_generator(
        "default", BearerTokenGenerator(access_token_generator=lambda *a, **k: secrets.token_urlsafe(24))
    )
    server.register_grant(Grant, [CodeChallenge(required=True), OpenID(require_nonce=True)])
    return server


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _send(self, status: int, body: Any, headers: Any = ()) -> None:
            raw = (json.dumps(body) if isinstance(body, dict | list) else str(body or "")).encode()
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            if isinstance(body, dict | list):
                self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def _request(self, data: dict[str, str]) -> Request:
            return Request(self.command, provider.issuer + self.path, self.headers, data)

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            if url.path == "/.well-known/openid-configuration":
                self._send(200, provider.metadata())
            elif url.path == "/jwks":
                self._send(200, {"keys": [provider.key.as_dict(private=False)]})
            elif url.path == "/userinfo":
                self._userinfo()
            elif url.path == "/authorize":
                request = self._request(dict(parse_qsl(url.query)))
                self._send(*provider.server.create_authorization_response(request, grant_user=provider.user))
            else:
                self._send(404, {"error": "not_found"})

        def _userinfo(self) -> None:
            scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
            user = provider.tokens.get(token) if scheme.lower() == "bearer" else None
            if user is None or provider.tamper == "userinfo-refused":
                self._send(401, {"error": "invalid_token"}, [("WWW-Authenticate", 'Bearer error="invalid_token"')])
            elif provider.tamper == "userinfo-sub":
                self._send(200, {**user, "sub": "someone-else"})
            else:
                self._send(200, user)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            data = dict(parse_qsl(self.rfile.read(length).decode()))
            status, body, headers = provider.server.create_token_response(self._request(data))
            if provider.tamper and isinstance(body, dict) and "id_token" in body:
                body["id_token"] = provider.tampered(body["id_token"])
            self._send(status, body, headers)

    return Handler
