"""The token that guards a server reachable from other machines.

With a token set, every request (pages, API, static files) must carry it: the header
`Authorization: Bearer <token>` or `X-Molvae-Token: <token>` (scripts), or the cookie `molvae_token`,
which a page visit with `?token=<token>` sets before redirecting to the same page without it (browsers).
Tokens are compared in constant time. Without one, API requests get 401 JSON and page requests a form
that asks for it.
"""
from __future__ import annotations

import hmac
import html
from urllib.parse import urlencode
from typing import Awaitable, Callable

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

__all__ = ["install_token_guard", "COOKIE", "HEADER"]

COOKIE = "molvae_token"
HEADER = "x-molvae-token"

_FORM = """<!doctype html><html><head><meta charset="utf-8"><title>molvae serve: token needed</title>
<link rel="stylesheet" href="/static/style.css"></head><body><main class="narrow"><h1>molvae serve</h1>
<p>This server needs its access token (<code>molvae serve --token</code> or <code>MOLVAE_SERVE_TOKEN</code>).</p>
<form method="get" action="{path}"><label>Token <input type="password" name="token" autofocus></label>
<button type="submit">Open</button></form>{note}</main></body></html>"""


def _given(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get(HEADER) or request.cookies.get(COOKIE)


def install_token_guard(app: FastAPI, token: str | None) -> None:
    """Require `token` on every request of `app` (nothing when token is None)."""
    if token is None:
        return
    expected = token.encode()

    def ok(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), expected)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if ok(_given(request)):
            return await call_next(request)
        query = request.query_params.get("token")
        is_api = request.url.path.startswith("/api/") or request.url.path in ("/openapi.json", "/docs")
        if query is not None and not is_api and ok(query):
            rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = request.url.path + ("?" + urlencode(rest) if rest else "")
            response = RedirectResponse(target, status_code=303)
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
            return response
        if is_api or request.url.path.startswith("/static/"):
            return JSONResponse({"error": "this server needs its access token: send the header 'Authorization: "
                                          "Bearer <token>' or 'X-Molvae-Token: <token>'"}, status_code=401)
        note = "<p class='error'>That token is not right.</p>" if query is not None else ""
        return HTMLResponse(_FORM.format(path=html.escape(request.url.path), note=note), status_code=401)
