"""`molvae.web.serve`: load a model and run the web application with uvicorn.

It binds to 127.0.0.1 unless told otherwise. Any other address makes the server reachable from other
machines: then a warning is printed and a token is required (`token=` or the environment variable
MOLVAE_SERVE_TOKEN), which every request must carry.
"""
from __future__ import annotations

import ipaddress
import os
import sys
from typing import TYPE_CHECKING, Any, TextIO

from molvae.errors import UsageError
from molvae.web.limits import Limits

if TYPE_CHECKING:
    from fastapi import FastAPI

    from molvae import MolVAE

__all__ = ["serve", "resolve_token", "is_loopback", "TOKEN_ENV", "require_web"]

TOKEN_ENV = "MOLVAE_SERVE_TOKEN"
_MIN_TOKEN = 8


def require_web() -> None:
    """UsageError naming the extra to install when FastAPI or uvicorn is missing."""
    missing = []
    for module in ("fastapi", "uvicorn", "python_multipart", "jinja2", "markdown_it"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise UsageError(f"molvae serve needs the web extra (missing: {', '.join(missing)}); install it with "
                         "pip install -e '.[web]' (or bash scripts/setup.sh dev)")


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and 'localhost'."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(token: str | None, host: str, environ: dict[str, str] | None = None) -> str | None:
    """The token in force: `token`, else $MOLVAE_SERVE_TOKEN, else None. UsageError when the host is not a
    loopback address and there is none, or when it is shorter than 8 characters."""
    env = os.environ if environ is None else environ
    value = token if token is not None else (env.get(TOKEN_ENV) or None)
    if value is not None and (len(value.strip()) < _MIN_TOKEN or value != value.strip()):
        raise UsageError(f"the token must be at least {_MIN_TOKEN} characters without surrounding spaces")
    if value is None and not is_loopback(host):
        raise UsageError(f"--host {host} makes the server reachable from other machines, so it needs a token: "
                         f"give --token T or set {TOKEN_ENV} (every request must then carry it)")
    return value


def _check_port(port: Any) -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise UsageError(f"port must be an integer in [0, 65535], got {port!r}")
    return port


def build(model: MolVAE | str | None = None, token: str | None = None, limits: Limits | None = None) -> FastAPI:
    """The app around `model` (a MolVAE, a model name or checkpoint directory, or None for the default)."""
    require_web()
    import molvae
    from molvae.web.app import create_app

    vae = model if isinstance(model, molvae.MolVAE) else molvae.load(model)
    return create_app(vae, token=token, limits=limits)


def serve(model: MolVAE | str | None = None, host: str = "127.0.0.1", port: int = 8000, token: str | None = None,
          limits: Limits | None = None, log_level: str = "info", out: TextIO | None = None) -> None:
    """Load `model` and serve it at http://host:port until interrupted.

    token: required on every request (None: $MOLVAE_SERVE_TOKEN, if set); obligatory when `host` is not a
    loopback address, which also prints a warning. limits: per-request limits (`Limits()`).
    """
    require_web()
    if not isinstance(host, str) or not host.strip():
        raise UsageError(f"host must be an address such as 127.0.0.1, got {host!r}")
    port = _check_port(port)
    token = resolve_token(token, host)
    out = sys.stderr if out is None else out
    if not is_loopback(host):
        print(f"warning: serving on {host}, reachable from other machines; every request needs the token. "
              "Use HTTPS in front of it (a reverse proxy) on a network you do not trust.", file=out)
    import uvicorn

    app = build(model, token=token, limits=limits)
    shown = "localhost" if host in ("0.0.0.0", "::") else host
    query = "?token=..." if token else ""
    print(f"molvae serve: {app.state.service.model!r}\nopen http://{shown}:{port}/generate{query} "
          f"(API docs at /docs); Ctrl+C stops", file=out, flush=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)
