"""A small but real OpenID Connect provider for the tests: discovery, an authorization
page with one button per person, the token endpoint (authorization code with PKCE, an
RS256-signed ID token), JWKS and user info, served over HTTP on 127.0.0.1 by a thread.

Nothing of the relying party is stubbed: Appease talks to it over the network exactly as
it talks to Keycloak or Okta."""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

CLIENT_ID = "appease-test"
CLIENT_SECRET = "appease-test-secret"
KEY_ID = "test-key-1"


@dataclass
class Provider:
    """People are claims by subject; `amr` goes only into the ID token, as real providers do."""

    people: dict[str, dict] = field(default_factory=dict)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    codes: dict[str, dict] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    token_requests: int = 0
    audience: str = CLIENT_ID
    url: str = ""
    server: ThreadingHTTPServer | None = None

    def jwks(self) -> dict:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": KEY_ID, "alg": "RS256", "use": "sig"}]}

    def discovery(self) -> dict:
        return {
            "issuer": self.url,
            "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token",
            "userinfo_endpoint": f"{self.url}/userinfo",
            "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def id_token(self, sub: str, nonce: str | None) -> str:
        claims = dict(self.people[sub])
        now = int(time.time())
        payload = {**claims, "iss": self.url, "sub": sub, "aud": self.audience, "iat": now, "exp": now + 300}
        if nonce:
            payload["nonce"] = nonce
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": KEY_ID})

    def userinfo(self, sub: str) -> dict:
        return {"sub": sub, **{name: value for name, value in self.people[sub].items() if name != "amr"}}


class _Handler(BaseHTTPRequestHandler):
    provider: Provider

    def log_message(self, *args):  # quiet
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/json", headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, data, status=200):
        self._send(status, json.dumps(data).encode())

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        provider = self.provider
        if parts.path == "/.well-known/openid-configuration":
            return self._json(provider.discovery())
        if parts.path == "/jwks":
            return self._json(provider.jwks())
        if parts.path == "/authorize":
            if query.get("client_id") != CLIENT_ID or query.get("response_type") != "code":
                return self._send(400, b"bad request", "text/plain")
            hidden = "".join(
                f'<input type="hidden" name="{html.escape(name)}" value="{html.escape(value)}">'
                for name, value in query.items()
            )
            buttons = "".join(
                f'<button type="submit" name="sub" value="{html.escape(sub)}">Continue as {html.escape(sub)}</button>'
                for sub in provider.people
            )
            page = (
                "<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>"
                f"<form method=post>{hidden}{buttons}</form>"
            )
            return self._send(200, page.encode(), "text/html; charset=utf-8")
        if parts.path == "/userinfo":
            token = (self.headers.get("Authorization") or "").removeprefix("Bearer ")
            sub = provider.tokens.get(token)
            if sub is None:
                return self._json({"error": "invalid_token"}, 401)
            return self._json(provider.userinfo(sub))
        return self._send(404, b"not found", "text/plain")

    def do_POST(self):
        provider = self.provider
        form = self._form()
        if self.path.startswith("/authorize"):
            sub = form.get("sub")
            if sub not in provider.people:
                return self._send(400, b"unknown person", "text/plain")
            code = secrets.token_urlsafe(16)
            provider.codes[code] = {
                "sub": sub,
                "nonce": form.get("nonce"),
                "redirect_uri": form["redirect_uri"],
                "challenge": form.get("code_challenge"),
            }
            location = f"{form['redirect_uri']}?{urlencode({'code': code, 'state': form['state']})}"
            return self._send(302, b"", "text/plain", {"Location": location})
        if self.path == "/token":
            provider.token_requests += 1
            grant = provider.codes.pop(form.get("code", ""), None)
            if (
                grant is None
                or form.get("client_id") != CLIENT_ID
                or form.get("client_secret") != CLIENT_SECRET
                or form.get("redirect_uri") != grant["redirect_uri"]
            ):
                return self._json({"error": "invalid_grant"}, 400)
            if grant["challenge"]:
                digest = hashlib.sha256(form.get("code_verifier", "").encode()).digest()
                if base64.urlsafe_b64encode(digest).rstrip(b"=").decode() != grant["challenge"]:
                    return self._json({"error": "invalid_grant", "error_description": "PKCE"}, 400)
            access = secrets.token_urlsafe(24)
            provider.tokens[access] = grant["sub"]
            return self._json(
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": 300,
                    "id_token": provider.id_token(grant["sub"], grant["nonce"]),
                }
            )
        return self._send(404, b"not found", "text/plain")


def provider_start() -> tuple[Provider, ThreadingHTTPServer]:
    provider = Provider()
    handler = type("Handler", (_Handler,), {"provider": provider})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    provider.url = f"http://127.0.0.1:{server.server_address[1]}"
    provider.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return provider, server
