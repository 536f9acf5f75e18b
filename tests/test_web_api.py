"""`molvae serve`'s JSON API and pages through FastAPI's test client, on the shipped model: every endpoint,
bad input (a 4xx JSON error with the reason, never a traceback), the limits, the job queue and the token."""
from __future__ import annotations

import threading
import time
import warnings

import pytest

pytest.importorskip("fastapi", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("httpx", reason="the web extra is not installed (pip install -e '.[web]')")
pytest.importorskip("python_multipart", reason="the web extra is not installed (pip install -e '.[web]')")

with warnings.catch_warnings():  # starlette's notice that it prefers httpx2 to httpx
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient  # noqa: E402

from molvae.errors import UsageError  # noqa: E402
from molvae.web import Limits, create_app, resolve_token  # noqa: E402
from molvae.web import work  # noqa: E402
from molvae.web.jobs import JobQueue, QueueFull  # noqa: E402

pytestmark = [pytest.mark.usefixtures("one_thread"),
              pytest.mark.filterwarnings("ignore::DeprecationWarning")]

PARACETAMOL = "CC(=O)Nc1ccc(O)cc1"


@pytest.fixture(scope="module")
def client(shipped):
    return TestClient(create_app(shipped))


@pytest.fixture(scope="module")
def small(shipped):
    """An app with tiny limits."""
    limits = Limits(max_molecules=3, max_sample=4, max_smiles_length=40, max_upload_bytes=200, max_analogs=5)
    return TestClient(create_app(shipped, limits=limits))


def wait_job(client: TestClient, job_id: str, timeout: float = 300) -> dict:
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = client.get(f"/api/jobs/{job_id}").json()
        if job["state"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def error_of(response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and "Traceback" not in body["error"]
    return body["error"]


def test_health_and_model(client):
    health = client.get("/api/health").json()
    assert health["status"] == "ok" and health["model"] == "moses-smiles"
    info = client.get("/api/model").json()
    assert [p["name"] for p in info["properties"]] == ["logp", "qed", "sa"]
    assert info["representation"] == "smiles" and info["training"]["data"] == "moses"
    assert "moses-smiles" in info["card_markdown"] and info["domain"]["threshold"] > 0


def test_sample_in_a_window_is_reproducible(client):
    body = {"n": 4, "where": "logp>=2,logp<=3", "seed": 7}
    first = client.post("/api/sample", json=body)
    assert first.status_code == 200, first.text
    data = first.json()
    assert len(data["rows"]) == 4 and data["summary"]["seed"] == 7
    for row in data["rows"]:
        assert 2 <= row["logp"] <= 3
        assert {"smiles", "mw", "qed", "tpsa", "sa", "novel", "in_domain", "anomaly"} <= set(row)
    again = client.post("/api/sample", json=body).json()
    assert [r["smiles"] for r in again["rows"]] == [r["smiles"] for r in data["rows"]]


def test_sample_near_a_molecule_returns_its_analogs(client):
    from molvae import chem

    near = "Cc1ccc(S(=O)(=O)N2CCCC2)cc1"  # a small MOSES-like sulfonamide the default spells
    res = client.post("/api/sample", json={"n": 3, "near": near, "similarity": 0.4, "seed": 0})
    assert res.status_code == 200, res.text
    data = res.json()
    assert data["summary"]["near"] == near and data["summary"]["similarity"] == 0.4
    rows = data["rows"]
    assert 1 <= len(rows) <= 3 and len({r["smiles"] for r in rows}) == len(rows)
    for row in rows:  # the reported similarity is RDKit's Morgan Tanimoto to the molecule, at the floor or above
        assert row["similarity"] >= 0.4 and abs(chem.tanimoto(row["smiles"], near) - row["similarity"]) < 1e-9


@pytest.mark.parametrize("body, status, words", [
    ({"n": 2, "near": "C1CC", "seed": 0}, 400, "cannot encode the molecule given as near"),
    ({"n": 2, "near": PARACETAMOL, "similarity": 1.5}, 400, "similarity must be a number in [0, 1]"),
    ({"n": 2, "near": ["CCO"]}, 422, "near: Input should be a valid string"),
    ({"n": "5"}, 422, "n: Input should be a valid integer"),
    ({"n": 0}, 400, "n must be a positive integer"),
    ({"n": 9}, 400, "limit of 4"),
    ({"n": 2, "where": "foo>3"}, 400, "malformed condition"),
    ({"n": 2, "where": "colour>=3"}, 400, "colour"),
    ({"n": 2, "seed": -1}, 400, "seed"),
    ({"n": 2, "m": 3}, 422, "m: Extra inputs are not permitted"),
])
def test_sample_bad_input(small, body, status, words):
    assert words in error_of(small.post("/api/sample", json=body), status)


def test_bad_json_and_unknown_routes(client):
    assert "JSON" in error_of(client.post("/api/sample", content=b"{n: 3",
                                          headers={"content-type": "application/json"}), 422)
    error_of(client.get("/api/nothing"), 404)
    error_of(client.get("/api/jobs/0000"), 404)


def test_predict_keeps_every_row_with_reasons(client):
    res = client.post("/api/predict", json={"smiles": [PARACETAMOL, "not-a-molecule", "[Fe]"],
                                            "names": ["paracetamol", "junk", "iron"]})
    assert res.status_code == 200, res.text
    rows = res.json()["rows"]
    assert [r["name"] for r in rows] == ["paracetamol", "junk", "iron"]
    assert rows[0]["reason"] == "" and rows[0]["logp"] is not None and isinstance(rows[0]["in_domain"], bool)
    assert "not a valid SMILES" in rows[1]["reason"] and rows[1]["logp"] is None and rows[1]["anomaly"] is None
    assert "[Fe]" in rows[2]["reason"] and rows[2]["in_domain"] is False


def test_score(client):
    res = client.post("/api/score", json={"smiles": [PARACETAMOL, "C1CC"]})
    assert res.status_code == 200, res.text
    rows = res.json()["rows"]
    assert rows[0]["nll"] > 0 and rows[0]["reason"] == "" and rows[1]["reason"]
    assert res.json()["summary"] == {"n": 2, "in_domain": pytest.approx(rows[0]["in_domain"] / 2), "unreadable": 1}


@pytest.mark.parametrize("body, status, words", [
    ({"smiles": ["C"] * 4}, 400, "limit is 3 per request"),
    ({"smiles": ["C" * 41]}, 400, "40 characters per SMILES"),
    ({"smiles": []}, 400, "empty"),
    ({"smiles": "CCO"}, 422, "smiles"),
    ({"smiles": ["CCO", 3]}, 422, "smiles.1"),
    ({"smiles": ["CCO"], "names": ["a", "b"]}, 400, "one name per SMILES"),
])
def test_predict_and_score_limits(small, body, status, words):
    for route in ("/api/predict", "/api/score"):
        assert words in error_of(small.post(route, json=body), status)


def test_job_progress_and_downloads(client):
    job = client.post("/api/jobs/sample", json={"n": 3, "seed": 1})
    assert job.status_code == 202 and job.json()["state"] in ("queued", "running", "done")
    done = wait_job(client, job.json()["id"])
    assert done["state"] == "done" and done["progress"]["done"] == done["progress"]["total"]
    assert len(done["rows"]) == 3 and "smiles" in done["columns"]
    csv = client.get(f"/api/jobs/{done['id']}/download", params={"format": "csv"})
    assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("smiles,")
    assert len(csv.text.splitlines()) == 4 and "attachment" in csv.headers["content-disposition"]
    sdf = client.get(f"/api/jobs/{done['id']}/download", params={"format": "sdf"})
    assert sdf.text.count("$$$$") == 3 and "<logp>" in sdf.text
    assert "csv, sdf, smi" in error_of(client.get(f"/api/jobs/{done['id']}/download",
                                                  params={"format": "xlsx"}), 400)
    assert "finished" in error_of(client.delete(f"/api/jobs/{done['id']}"), 409)


def test_cancel_queued_and_running_jobs(client):
    jobs = client.app.state.service.jobs
    gate, steps = threading.Event(), []

    def blocker(progress):
        gate.wait(30)
        return work.Result(work.pd.DataFrame({"smiles": ["C"]}))

    def long_task(progress):
        progress.total(1000)
        for i in range(1000):
            steps.append(i)
            time.sleep(0.01)
            progress.step()

    first = jobs.submit("test", {}, blocker)
    queued = client.post("/api/jobs/score", json={"smiles": ["CCO"]}).json()
    cancelled = client.delete(f"/api/jobs/{queued['id']}").json()
    assert cancelled["state"] == "cancelled"
    gate.set()
    assert first.wait(30) and first.state == "done"
    running = jobs.submit("test", {}, long_task)
    while not steps:
        time.sleep(0.01)
    assert client.delete(f"/api/jobs/{running.id}").status_code == 200
    assert running.wait(30) and running.state == "cancelled" and len(steps) < 1000
    assert "no result" in error_of(client.get(f"/api/jobs/{running.id}/download"), 409)


def test_queue_runs_every_job_in_order_and_refuses_past_its_limit():
    queue = JobQueue(max_queued=50, max_kept=100)
    order: list[int] = []
    gate = threading.Event()
    jobs = [queue.submit("t", {}, lambda p, i=i: (gate.wait(10), order.append(i))) for i in range(20)]
    gate.set()
    assert all(job.wait(10) for job in jobs) and order == list(range(20))
    full = JobQueue(max_queued=1)
    hold = threading.Event()
    full.submit("t", {}, lambda p: hold.wait(10))
    while full.waiting:  # the worker has taken the first job
        time.sleep(0.01)
    full.submit("t", {}, lambda p: None)
    with pytest.raises(QueueFull, match="limit is 1"):
        full.submit("t", {}, lambda p: None)
    hold.set()
    queue.close()
    full.close()


def test_a_bug_in_a_job_is_one_line_and_the_server_goes_on(client):
    job = client.app.state.service.jobs.submit("test", {}, lambda p: 1 / 0)
    assert job.wait(30) and job.state == "failed"
    assert job.error.startswith("internal error (ZeroDivisionError)")
    assert client.get("/api/health").json()["status"] == "ok"


def test_analogs_job(client, monkeypatch):
    monkeypatch.setattr(work, "ANALOG_ROUNDS", 1)
    monkeypatch.setattr(work, "ANALOG_SETTINGS", {"n_starts": 4, "steps": 2, "candidates": 8, "refine_steps": 2})
    job = client.post("/api/jobs/analogs", json={"smiles": PARACETAMOL, "property": "QED", "similarity": 0.3,
                                                  "n": 5, "seed": 0})
    assert job.status_code == 202, job.text
    done = wait_job(client, job.json()["id"])
    assert done["state"] == "done", done
    assert done["summary"]["property"] == "qed" and done["summary"]["decoded"] > 0
    changes = [r["change"] for r in done["rows"]]
    assert changes == sorted(changes, reverse=True)
    assert all(r["similarity"] >= 0.3 for r in done["rows"])


@pytest.mark.parametrize("body, words", [
    ({"smiles": PARACETAMOL, "property": "colour"}, "one the model predicts"),
    ({"smiles": PARACETAMOL, "property": "qed", "similarity": 1.5}, "[0, 1]"),
    ({"smiles": PARACETAMOL, "property": "qed", "direction": "up"}, "'max' or 'min'"),
    ({"smiles": PARACETAMOL, "property": "qed", "n": 6}, "limit of 5"),
])
def test_analogs_bad_input(small, body, words):
    assert words in error_of(small.post("/api/jobs/analogs", json=body), 400)


def test_upload_csv_and_sdf(client):
    from rdkit import Chem

    res = client.post("/api/upload", files={"file": ("mols.csv", b"Name,SMILES\npara,CC(=O)Nc1ccc(O)cc1\nx,C1CC\n")})
    assert res.status_code == 200, res.text
    assert res.json()["smiles"] == [PARACETAMOL, "C1CC"] and res.json()["names"] == ["para", "x"]
    mol = Chem.MolFromSmiles(PARACETAMOL)
    mol.SetProp("id", "p1")
    sdf = Chem.MolToMolBlock(mol) + "> <id>\np1\n\n$$$$\n"
    res = client.post("/api/upload", files={"file": ("mols.sdf", sdf.encode())})
    assert res.json()["smiles"] == [PARACETAMOL] and res.json()["names"] == ["p1"]


@pytest.mark.parametrize("name, data, status, words", [
    ("big.csv", b"smiles\n" + b"C\n" * 200, 400, "limit is 200 bytes"),
    ("four.csv", b"smiles\nC\nCC\nCCC\nCCCC\n", 400, "limit is 3 per request"),
    ("mols.xlsx", b"smiles\nC\n", 400, "unsupported file type '.xlsx'"),
    ("empty.csv", b"   ", 400, "empty"),
    ("nosmiles.csv", b"a,b\n1,2\n", 400, "no SMILES column"),
])
def test_upload_errors(small, name, data, status, words):
    assert words in error_of(small.post("/api/upload", files={"file": (name, data)}), status)


def test_upload_without_a_file(client):
    assert "field 'file'" in error_of(client.post("/api/upload", data={"x": "1"}), 400)


def test_svg(client, small):
    res = client.get("/api/svg", params={"smiles": PARACETAMOL})
    assert res.status_code == 200 and res.headers["content-type"].startswith("image/svg+xml")
    assert "<svg" in res.text
    assert "not a molecule" in client.get("/api/svg", params={"smiles": "C1CC"}).text
    assert "40 characters" in error_of(small.get("/api/svg", params={"smiles": "C" * 41}), 400)


@pytest.mark.parametrize("path, words", [("/generate", "Property"), ("/analogs", "Similarity"),
                                         ("/score", "upload a file"), ("/model", "Model card")])
def test_pages(client, path, words):
    res = client.get(path)
    assert res.status_code == 200 and words in res.text and "/static/app.js" in res.text
    assert client.get("/static/app.js").status_code == 200


def test_the_vendored_editor_is_served_with_its_license(client):
    assert "Redistribution and use" in client.get("/static/jsme/license.txt").text
    assert client.get("/static/jsme/jsme.nocache.js").status_code == 200
    assert '"version": "0.8.2"' in client.get("/static/jsme/package.json").text


def test_docs_schema_lists_the_api(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/health", "/api/model", "/api/sample", "/api/score", "/api/predict"} <= set(paths)


def test_token_guards_every_request(shipped):
    guarded = TestClient(create_app(shipped, token="s3cret-token"), follow_redirects=False)
    assert "access token" in error_of(guarded.get("/api/health"), 401)
    assert "access token" in error_of(guarded.get("/api/health", headers={"X-Molvae-Token": "wrong-token"}), 401)
    assert guarded.get("/api/health", headers={"Authorization": "Bearer s3cret-token"}).status_code == 200
    assert guarded.get("/api/model", headers={"X-Molvae-Token": "s3cret-token"}).status_code == 200
    page = guarded.get("/generate")
    assert page.status_code == 401 and "token" in page.text and "<form" in page.text
    assert guarded.get("/generate", params={"token": "nope"}).status_code == 401
    visit = guarded.get("/generate", params={"token": "s3cret-token"})
    assert visit.status_code == 303 and visit.headers["location"] == "/generate"
    assert guarded.get("/generate").status_code == 200  # the cookie the visit set
    assert guarded.get("/api/health").status_code == 200


def test_resolve_token():
    assert resolve_token(None, "127.0.0.1", {}) is None
    assert resolve_token(None, "0.0.0.0", {"MOLVAE_SERVE_TOKEN": "from-the-env"}) == "from-the-env"
    assert resolve_token("given-token", "::1", {"MOLVAE_SERVE_TOKEN": "from-the-env"}) == "given-token"
    with pytest.raises(UsageError, match="needs a token"):
        resolve_token(None, "0.0.0.0", {})
    with pytest.raises(UsageError, match="at least 8"):
        resolve_token("short", "127.0.0.1", {})


def test_cli_serve(run, monkeypatch):
    import molvae.web.server as server

    code, out = run("serve", "--host", "0.0.0.0")
    assert code == 2 and "needs a token" in out
    started = {}
    monkeypatch.setattr(server, "build", lambda model, token=None, limits=None: started.setdefault(
        "app", type("App", (), {"state": type("S", (), {"service": type("V", (), {"model": "M"})})})()))
    monkeypatch.setattr("uvicorn.run", lambda app, host, port, log_level: started.update(host=host, port=port))
    code, out = run("serve", "--host", "0.0.0.0", "--port", "8123", "--token", "long-enough-token")
    assert code == 0 and "warning: serving on 0.0.0.0" in out and "token=" in out
    assert started["host"] == "0.0.0.0" and started["port"] == 8123
    code, out = run("serve", "--port", "70000")
    assert code == 2 and "port" in out
