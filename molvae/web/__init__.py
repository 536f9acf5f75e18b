"""`molvae serve`: the toolkit in a browser.

A FastAPI application with four pages (Generate, Analogs and optimization, Score and predict, Model)
and a JSON API behind them, around one loaded model whose work runs in a single job queue. Needs the
`web` extra (fastapi, uvicorn, python-multipart). See docs/serve.md.

    from molvae.web import create_app, serve, Limits
    serve("moses-smiles", port=8000)             # what `molvae serve` calls
    app = create_app(molvae.load())             # the ASGI app, e.g. for a test client
"""
from __future__ import annotations

from typing import Any

from molvae.web.limits import Limits
from molvae.web.server import TOKEN_ENV, build, is_loopback, require_web, resolve_token, serve

__all__ = ["create_app", "serve", "build", "Limits", "TOKEN_ENV", "resolve_token", "is_loopback", "require_web"]


def create_app(*args: Any, **kwargs: Any) -> Any:
    """`molvae.web.app.create_app` (imported on use, so that `molvae.web` imports without FastAPI)."""
    require_web()
    from molvae.web.app import create_app as _create

    return _create(*args, **kwargs)
