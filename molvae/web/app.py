"""The FastAPI application of `molvae serve`: four pages and the JSON API, one model behind a job queue.

`create_app(model, token=None, limits=Limits())` builds it around a loaded `MolVAE`. Routes:

- pages: `/generate`, `/analogs`, `/score`, `/model` (HTML; `/` redirects to `/generate`)
- `GET /api/health`, `GET /api/model`
- `POST /api/sample` {"n", "where", "seed"}, `POST /api/score` and `POST /api/predict` {"smiles": [...]}:
  run at once (queued behind other work for the model) and answer {"rows", "summary", "warnings"}
- `POST /api/jobs/{sample|analogs|predict|score}`: the same work as a job; `GET /api/jobs/{id}` (state,
  progress, and the rows when done), `DELETE /api/jobs/{id}` (cancel), `GET /api/jobs/{id}/download?format=csv|sdf|smi`
- `POST /api/upload` (a CSV/SDF/SMI file, multipart): its SMILES, checked against the limits
- `GET /api/svg?smiles=...`: the structure drawn by RDKit

Every error is a JSON object {"error": message} with a 4xx status (5xx only for a server bug, with no
traceback in the answer). With a token, every request needs it (see `molvae.web.auth`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from molvae.errors import MolvaeError, UsageError
from molvae.web import limits as checks
from molvae.web.api_models import AnalogsBody, SampleBody, SmilesBody
from molvae.web.auth import install_token_guard
from molvae.web.jobs import Job, JobQueue, QueueFull
from molvae.web.limits import Limits
from molvae.web.render import card_html, model_info, molecule_svg
from molvae.web.uploads import read_upload
from molvae.web.work import (
    DOWNLOAD_FORMATS,
    GRID_PROPERTIES,
    analogs_task,
    predict_task,
    rows,
    sample_task,
    score_task,
    table_bytes,
)

if TYPE_CHECKING:
    from molvae import MolVAE

__all__ = ["create_app"]

log = logging.getLogger("molvae.web")
_HERE = Path(__file__).parent
PAGES = {"generate": "Generate", "analogs": "Analogs and optimization", "score": "Score and predict",
         "model": "Model"}


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(x) for x in err.get("loc", ()) if x != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(QueueFull)
    async def _busy(request: Request, exc: QueueFull) -> JSONResponse:
        return _error(503, str(exc))

    @app.exception_handler(MolvaeError)
    async def _user_error(request: Request, exc: MolvaeError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(422, _validation_message(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s", request.url.path)
        return _error(500, f"internal error ({type(exc).__name__}); the server log has the details")


class Service:
    """The model, its job queue and the limits: what the routes share."""

    def __init__(self, model: MolVAE, limits: Limits):
        self.model, self.limits = model, limits
        self.jobs = JobQueue(limits.max_queued, limits.max_jobs_kept)
        self.info = model_info(model)
        self.info_html = card_html(self.info["card_markdown"]) if self.info["card_markdown"] else ""

    def job(self, kind: str, body: Any) -> Job:
        """Check a request's parameters (once, here) and queue its job."""
        m, lim = self.model, self.limits
        task: Callable[[Any], Any]
        if kind == "sample":
            n, where = checks.check_n(body.n, lim.max_sample), checks.check_where(body.where)
            seed = checks.check_seed(body.seed)
            near = None if body.near is None else checks.check_smiles([body.near], lim, "near")[0]
            sim = checks.check_similarity(body.similarity)
            params: dict[str, Any] = {"n": n, "where": where, "seed": seed, "near": near, "similarity": sim}
            task = lambda p: sample_task(m, n, where, seed, p, near, sim)  # noqa: E731
        elif kind == "analogs":
            smiles = checks.check_smiles([body.smiles], lim, "smiles")[0]
            prop = checks.check_property(body.property, m.prop_names)
            direction, sim = checks.check_direction(body.direction), checks.check_similarity(body.similarity)
            n, seed = checks.check_n(body.n, lim.max_analogs), checks.check_seed(body.seed)
            params = {"smiles": smiles, "property": prop, "direction": direction, "similarity": sim, "n": n,
                      "seed": seed}
            task = lambda p: analogs_task(m, smiles, prop, direction, sim, n, seed, p)  # noqa: E731
        elif kind in ("predict", "score"):
            smiles = checks.check_smiles(body.smiles, lim)
            names = list(body.names or [])
            if names and len(names) != len(smiles):
                raise UsageError(f"names has {len(names)} entries for {len(smiles)} SMILES; give one name per "
                                 "SMILES or none")
            params = {"n": len(smiles)}
            if kind == "predict":
                task = lambda p: predict_task(m, smiles, [str(x) for x in names], p)  # noqa: E731
            else:
                task = lambda p: score_task(m, smiles, p)  # noqa: E731
        else:
            raise StarletteHTTPException(404, f"no job kind {kind!r}; use sample, analogs, predict or score")
        return self.jobs.submit(kind, params, task)

    def job_json(self, job: Job, with_rows: bool = True) -> dict[str, Any]:
        out = job.status()
        if job.state == "done" and job.result is not None:
            out["summary"] = job.result.summary
            out["columns"] = [str(c) for c in job.result.table.columns]
            if with_rows:
                out["rows"] = rows(job.result.table)
        return out

    def find(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise StarletteHTTPException(404, f"no job {job_id!r} (finished jobs are kept for the last "
                                              f"{self.limits.max_jobs_kept} only)")
        return job


async def _wait(job: Job) -> None:
    """Wait for a job without holding a thread."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def wake() -> None:
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(None))

    job.on_finish(wake)
    await done


def _api_routes(app: FastAPI, svc: Service) -> None:
    async def run_now(kind: str, body: Any) -> JSONResponse:
        job = svc.job(kind, body)
        await _wait(job)
        if job.state == "failed":
            return _error(400, job.error) if not job.error.startswith("internal error") else _error(500, job.error)
        if job.state == "cancelled":
            return _error(409, "the job was cancelled")
        data = svc.job_json(job)
        return JSONResponse({"rows": data["rows"], "summary": data["summary"], "warnings": data["warnings"],
                             "job": job.id})

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        """The server is up: the model's name, the jobs waiting and the jobs done."""
        return {"status": "ok", "model": svc.model.name, "queued": svc.jobs.waiting,
                "completed": svc.jobs.completed}

    @app.get("/api/model")
    def model() -> dict[str, Any]:
        """The model: representation, properties it predicts, training data, domain, model card (markdown)."""
        return svc.info

    @app.post("/api/sample")
    async def sample(body: SampleBody) -> JSONResponse:
        """Sample `n` distinct valid molecules, under the property condition `where` when given."""
        return await run_now("sample", body)

    @app.post("/api/score")
    async def score(body: SmilesBody) -> JSONResponse:
        """Anomaly and applicability-domain scores, one row per SMILES."""
        return await run_now("score", body)

    @app.post("/api/predict")
    async def predict(body: SmilesBody) -> JSONResponse:
        """Property-head predictions with in_domain, anomaly and the reason for unreadable molecules."""
        return await run_now("predict", body)



def _job_routes(app: FastAPI, svc: Service) -> None:
    @app.post("/api/jobs/sample", status_code=202)
    def job_sample(body: SampleBody) -> dict[str, Any]:
        return svc.job_json(svc.job("sample", body))

    @app.post("/api/jobs/analogs", status_code=202)
    def job_analogs(body: AnalogsBody) -> dict[str, Any]:
        return svc.job_json(svc.job("analogs", body))

    @app.post("/api/jobs/predict", status_code=202)
    def job_predict(body: SmilesBody) -> dict[str, Any]:
        return svc.job_json(svc.job("predict", body))

    @app.post("/api/jobs/score", status_code=202)
    def job_score(body: SmilesBody) -> dict[str, Any]:
        return svc.job_json(svc.job("score", body))

    @app.get("/api/jobs/{job_id}")
    def job_status(job_id: str) -> dict[str, Any]:
        """A job's state and progress; its rows once done."""
        return svc.job_json(svc.find(job_id))

    @app.delete("/api/jobs/{job_id}")
    def job_cancel(job_id: str) -> Any:
        """Cancel a job: a queued one at once, a running one at its next step."""
        job = svc.jobs.cancel(svc.find(job_id).id)
        if job is None or job.state in ("done", "failed"):
            return _error(409, f"job {job_id} has already finished ({job.state if job else 'gone'})")
        return svc.job_json(job, with_rows=False)

    @app.get("/api/jobs/{job_id}/download")
    def job_download(job_id: str, format: str = "csv") -> Response:
        """The job's table as CSV, SDF or SMILES."""
        job = svc.find(job_id)
        if format not in DOWNLOAD_FORMATS:
            raise UsageError(f"unknown format {format!r}; use one of {', '.join(DOWNLOAD_FORMATS)}")
        if job.state != "done" or job.result is None:
            return _error(409, f"job {job_id} has no result ({job.state})")
        data = table_bytes(job.result.table, format)
        name = f"molvae-{job.kind}-{job.id[:8]}.{format}"
        return Response(data, media_type=DOWNLOAD_FORMATS[format],
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})

    @app.post("/api/upload")
    async def upload(request: Request) -> dict[str, Any]:
        """Read the SMILES (and names) of an uploaded CSV, SDF or SMI file (multipart field `file`)."""
        smiles, names, filename = await read_upload(request, svc.limits)
        return {"file": filename, "n": len(smiles), "smiles": smiles, "names": names}

    @app.get("/api/svg")
    def svg(smiles: str, width: int = 220, height: int = 160) -> Response:
        """The structure of `smiles` drawn by RDKit, as SVG."""
        if len(smiles) > svc.limits.max_smiles_length:
            raise UsageError(f"smiles is {len(smiles):,} characters long; the limit is "
                             f"{svc.limits.max_smiles_length} characters per SMILES (max_smiles_length)")
        if not (40 <= width <= 1000 and 40 <= height <= 1000):
            raise UsageError("width and height must be between 40 and 1000 pixels")
        return Response(molecule_svg(smiles, width, height), media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})


def _page_routes(app: FastAPI, svc: Service) -> None:
    templates = Jinja2Templates(directory=str(_HERE / "templates"))

    def page(request: Request, name: str) -> Response:
        context = {"page": name, "pages": PAGES, "info": svc.info, "card_html": svc.info_html,
                   "limits": svc.limits, "grid_properties": GRID_PROPERTIES,
                   "properties": list(svc.model.prop_names)}
        return templates.TemplateResponse(request, f"{name}.html", context)

    @app.get("/", include_in_schema=False)
    def index() -> RedirectResponse:
        return RedirectResponse("/generate")

    def route(name: str) -> Callable[[Request], Response]:
        def show(request: Request) -> Response:
            return page(request, name)
        return show

    for name in PAGES:
        app.add_api_route(f"/{name}", route(name), methods=["GET"], include_in_schema=False,
                          response_class=Response)


def create_app(model: MolVAE, token: str | None = None, limits: Limits | None = None) -> FastAPI:
    """The web application around a loaded model. token: when given, every request must carry it (header
    `Authorization: Bearer T` or `X-Molvae-Token: T`, the cookie a page visit with `?token=T` sets).
    limits: per-request limits (`Limits()` by default). Call `app.state.service.jobs.close()` to stop the
    worker (the server does this on shutdown)."""
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise UsageError(f"limits must be a molvae.web.Limits, got {type(limits).__name__}")
    svc = Service(model, limits)
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        svc.jobs.close()

    from molvae import __version__

    app = FastAPI(title="molvae serve", version=__version__, lifespan=lifespan,
                  description="Generate, optimize, score and predict molecules with a molvae model.")
    app.state.service = svc
    _install_error_handlers(app)
    install_token_guard(app, token)
    app.mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static")
    _api_routes(app, svc)
    _job_routes(app, svc)
    _page_routes(app, svc)
    return app
