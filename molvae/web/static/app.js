// molvae serve: the pages' client. Forms become jobs (POST /api/jobs/<kind>), polled until done,
// cancellable; results are drawn with structures from /api/svg. Text goes in with textContent only.
"use strict";

const LABELS = {logp: "logP", mw: "MW", qed: "QED", tpsa: "TPSA", sa: "SA", similarity: "similarity"};

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toFixed(Math.abs(value) >= 10 ? 1 : 3);
  if (typeof value === "boolean") return value ? "yes" : "no";
  return String(value);
}

function svgUrl(smiles, w, h) {
  return "/api/svg?" + new URLSearchParams({smiles: smiles, width: w || 220, height: h || 160});
}

async function api(method, url, body, isForm) {
  const opts = {method: method, headers: {}};
  if (body !== undefined) {
    if (isForm) opts.body = body;
    else { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  }
  const res = await fetch(url, opts);
  let data = null;
  try { data = await res.json(); } catch (e) { data = {error: "the server answered " + res.status}; }
  if (!res.ok) throw new Error(data && data.error ? data.error : "the server answered " + res.status);
  return data;
}

function formParams(form) {
  const kind = form.dataset.kind, f = new FormData(form), num = (k) => f.get(k) === "" || f.get(k) === null ? null : Number(f.get(k));
  if (kind === "sample") {
    const clauses = [];
    form.querySelectorAll("input[data-prop]").forEach((inp) => {
      if (inp.value !== "") clauses.push(inp.dataset.prop + inp.dataset.op + inp.value);
    });
    const near = (f.get("near") || "").trim();
    return {n: num("n"), seed: num("seed"), where: clauses.length ? clauses.join(",") : null,
            near: near || null, similarity: num("similarity") === null ? 0.4 : num("similarity")};
  }
  if (kind === "analogs") {
    return {smiles: f.get("smiles").trim(), property: f.get("property"), direction: f.get("direction"),
            similarity: num("similarity"), n: num("n"), seed: num("seed")};
  }
  return null;
}

async function predictParams(form) {
  const file = form.querySelector("input[type=file]").files[0];
  if (file) {
    const data = new FormData();
    data.append("file", file);
    const up = await api("POST", "/api/upload", data, true);
    return {smiles: up.smiles, names: up.names};
  }
  const smiles = [], names = [];
  for (const raw of form.querySelector("textarea").value.split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const i = line.search(/\s/);
    smiles.push(i < 0 ? line : line.slice(0, i));
    names.push(i < 0 ? "" : line.slice(i).trim());
  }
  return {smiles: smiles, names: names};
}

function card(row, keys) {
  const box = el("figure", {class: "mol"});
  box.appendChild(el("img", {src: svgUrl(row.smiles), alt: row.smiles, loading: "lazy", width: 220, height: 160}));
  const cap = el("figcaption");
  cap.appendChild(el("div", {class: "smiles"}, row.smiles));
  const props = el("div", {class: "props"});
  for (const k of keys) if (k in row && row[k] !== null) props.appendChild(el("span", {}, (LABELS[k] || k) + " " + fmt(row[k])));
  cap.appendChild(props);
  const badges = el("div", {class: "badges"});
  if (row.novel !== undefined) badges.appendChild(el("span", {class: row.novel ? "badge good" : "badge"}, row.novel ? "novel" : "in training set"));
  if (row.in_domain !== undefined && row.in_domain !== null) badges.appendChild(el("span", {class: row.in_domain ? "badge good" : "badge warn"}, row.in_domain ? "in domain" : "outside domain"));
  cap.appendChild(badges);
  box.appendChild(cap);
  return box;
}

function table(rows, columns, imageCol) {
  const t = el("table", {class: "results-table"}), head = el("tr");
  if (imageCol) head.appendChild(el("th", {}, "structure"));
  columns.forEach((c) => head.appendChild(el("th", {}, LABELS[c] || c)));
  t.appendChild(el("thead")).appendChild(head);
  const body = t.appendChild(el("tbody"));
  for (const row of rows) {
    const tr = el("tr");
    if (imageCol) {
      const td = el("td");
      if (row[imageCol]) td.appendChild(el("img", {src: svgUrl(row[imageCol], 150, 110), alt: row[imageCol], loading: "lazy", width: 150, height: 110}));
      tr.appendChild(td);
    }
    columns.forEach((c) => tr.appendChild(el("td", {class: c === "reason" && row[c] ? "reason" : ""}, fmt(row[c]))));
    body.appendChild(tr);
  }
  return t;
}

function render(kind, job, box) {
  const out = box.querySelector(".results"), sum = box.querySelector(".summary"), s = job.summary || {};
  out.replaceChildren();
  if (kind === "sample") {
    sum.textContent = `${s.n} molecules (asked ${s.asked}), seed ${s.seed}` + (s.where ? `, where ${s.where}` : "") +
      (s.near ? `, analogs of ${s.near} at similarity >= ${s.similarity}` : "") +
      (s.novel !== null ? `, novel ${(100 * s.novel).toFixed(0)}%` : "") + (s.in_domain !== null ? `, in domain ${(100 * s.in_domain).toFixed(0)}%` : "");
    const grid = el("div", {class: "grid"});
    job.rows.forEach((r) => grid.appendChild(card(r, ["similarity", "logp", "mw", "qed", "tpsa", "sa"])));
    out.appendChild(grid);
  } else if (kind === "analogs") {
    sum.textContent = `${s.n} analogs of ${s.start} (${s.property} ${fmt(s.start_value)}) at similarity >= ${s.similarity}, ${s.decoded} molecules decoded, seed ${s.seed}`;
    const cols = job.columns.filter((c) => c !== "predicted");
    out.appendChild(table(job.rows, cols, "smiles"));
  } else {
    sum.textContent = `${s.n} molecules` + (s.in_domain !== null && s.in_domain !== undefined ? `, in domain ${(100 * s.in_domain).toFixed(0)}%` : "") + `, ${s.unreadable} the model cannot read (see reason)`;
    const cols = job.columns.filter((c) => !["row", "stereo_removed", "standardized"].includes(c));
    out.appendChild(table(job.rows, cols, "smiles"));
  }
}

function setupForm(form) {
  const box = form.nextElementSibling, kind = form.dataset.kind;
  const bar = box.querySelector("progress"), msg = box.querySelector(".message"), err = box.querySelector(".error");
  const warn = box.querySelector(".warnings"), dls = box.querySelector(".downloads"), cancel = box.querySelector(".cancel");
  const button = form.querySelector("button[type=submit]");
  let current = null;
  cancel.addEventListener("click", async () => {
    if (current) { try { await api("DELETE", "/api/jobs/" + current); } catch (e) { /* finished meanwhile */ } }
  });
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    box.hidden = false; err.hidden = true; warn.hidden = true; dls.hidden = true;
    box.querySelector(".results").replaceChildren(); box.querySelector(".summary").textContent = "";
    bar.removeAttribute("value"); msg.textContent = "sending"; cancel.hidden = false; button.disabled = true;
    try {
      const params = kind === "predict" ? await predictParams(form) : formParams(form);
      let job = await api("POST", "/api/jobs/" + kind, params);
      current = job.id;
      while (["queued", "running"].includes(job.state)) {
        bar.max = job.progress.total; if (job.state === "running") bar.value = job.progress.done;
        msg.textContent = job.state === "queued" ? "waiting for the model" : (job.message || "running");
        await new Promise((r) => setTimeout(r, 400));
        job = await api("GET", "/api/jobs/" + job.id);
      }
      bar.max = 1; bar.value = 1;
      if (job.warnings.length) { warn.replaceChildren(...job.warnings.map((w) => el("li", {}, w))); warn.hidden = false; }
      if (job.state === "done") {
        msg.textContent = `done in ${job.run_s.toFixed(1)} s`;
        render(kind, job, box);
        dls.querySelectorAll("a.dl").forEach((a) => { a.href = `/api/jobs/${job.id}/download?format=${a.dataset.format}`; a.setAttribute("download", ""); });
        dls.hidden = false;
      } else {
        msg.textContent = job.state;
        if (job.error) { err.textContent = job.error; err.hidden = false; }
      }
    } catch (e) {
      msg.textContent = "failed"; err.textContent = e.message; err.hidden = false;
    } finally {
      cancel.hidden = true; button.disabled = false; current = null;
    }
  });
}

function setupPreview() {
  const input = document.querySelector("#analogs-form input[name=smiles]"), img = document.getElementById("query-image");
  if (!input || !img) return;
  const update = () => { if (input.value.trim()) img.src = svgUrl(input.value.trim()); };
  input.addEventListener("change", update);
  update();
}

// The molecule editor (JSME, vendored under /static/jsme/), loaded on first use: the drawing fills the SMILES field.
function setupEditor() {
  const toggle = document.getElementById("draw-toggle"), box = document.getElementById("jsme-box");
  const input = document.querySelector("#analogs-form input[name=smiles]"), use = document.getElementById("use-drawing");
  if (!toggle || !box || !input) return;
  const take = () => {
    const smiles = window.molvaeEditor ? window.molvaeEditor.smiles() : "";
    if (smiles) { input.value = smiles; input.dispatchEvent(new Event("change")); }
  };
  toggle.addEventListener("click", () => {
    box.hidden = !box.hidden;
    if (box.hidden || window.molvaeEditor || document.getElementById("jsme-script")) return;
    window.jsmeOnLoad = () => {
      const editor = new JSApplet.JSME("jsme_container", "440px", "340px", {options: "newlook"});
      window.molvaeEditor = editor;
      if (input.value.trim()) editor.readGenericMolecularInput(input.value.trim());
      if (editor.setCallBack) editor.setCallBack("AfterStructureModified", take);
    };
    document.body.appendChild(el("script", {src: "/static/jsme/jsme.nocache.js", id: "jsme-script"}));
  });
  use.addEventListener("click", take);
}

document.querySelectorAll("form.job-form").forEach(setupForm);
setupPreview();
setupEditor();
