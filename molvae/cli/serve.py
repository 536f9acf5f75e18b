"""`molvae serve`: the web application (pages and JSON API) around one model; see molvae.web."""
from __future__ import annotations

from typing import Optional

import typer

from molvae.cli.common import MODEL

__all__ = ["register"]


def serve(
    model: Optional[str] = MODEL,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Anything but a loopback address "
                             "is reachable from other machines and needs --token."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    token: Optional[str] = typer.Option(None, "--token", help="Access token every request must carry "
                                        "(default: $MOLVAE_SERVE_TOKEN)."),
) -> None:
    """Serve the model in a browser: Generate, Analogs, Score and predict, Model pages and a JSON API."""
    from molvae.web import serve as run

    run(model, host=host, port=port, token=token)


def register(app: typer.Typer) -> None:
    """Add `molvae serve` to the app."""
    app.command("serve")(serve)
