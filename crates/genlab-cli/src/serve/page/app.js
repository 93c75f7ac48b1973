// genlab studio: the page. Plain script, no dependencies, nothing fetched but the studio's own
// API (README, "The studio"). Shapes: a latent point `z` is an array of `latent` numbers.
"use strict";

const $ = (id) => document.getElementById(id);
const st = {
  runs: [], run: null, second: null, map: null, t: [], z: null, a: null, b: null,
  yours: null, epochs: null, timings: [], poll: null,
};
window.studio = st; // for the browser tests and the curious

function showError(msg) {
  const e = $("error");
  e.textContent = msg; e.hidden = !msg;
}

async function api(path, opts) {
  const r = await fetch(path, opts);
  if (!r.ok) {
    let msg = r.status + " " + r.statusText;
    try { msg = (await r.json()).error || msg; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return r;
}
const getJson = async (p) => (await api(p)).json();
const postJson = (p, body) => api(p, {
  method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
});

// A cheap content hash, so tests (and people) can tell that an image changed.
async function setBlobImage(img, resp) {
  const buf = await resp.arrayBuffer();
  let h = 2166136261;
  for (const b of new Uint8Array(buf)) h = Math.imul(h ^ b, 16777619) >>> 0;
  const old = img.src;
  await new Promise((ok) => {
    img.onload = ok; img.onerror = ok;
    img.src = URL.createObjectURL(new Blob([buf], { type: "image/png" }));
  });
  if (old.startsWith("blob:")) URL.revokeObjectURL(old);
  img.dataset.hash = String(h);
}

function classArg() {
  const r = st.run;
  return r && r.classes.length ? Number($("class").value) : undefined;
}

// ---- tabs ----
function showView(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("on", b.dataset.view === name);
  for (const s of document.querySelectorAll("section.view")) s.hidden = s.id !== name;
  if (name === "training") refreshTraining();
  if (name === "explorer" || name === "yours" || name === "memo") ensureMap();
  if (name === "sr") loadSr();
}
for (const b of document.querySelectorAll("#tabs button")) b.onclick = () => showView(b.dataset.view);

// ---- runs ----
function fmt(v) { return typeof v === "number" ? (Math.abs(v) >= 100 ? v.toFixed(1) : v.toPrecision(4)) : ""; }
function summary(last) {
  if (!last) return "";
  const keys = ["test.loss", "test.psnr", "train_loss", "d_loss", "g_loss", "accuracy", "test.accuracy"];
  return keys.filter((k) => k in last).map((k) => k + " " + fmt(last[k])).join(", ");
}

async function loadRuns() {
  const { runs } = await getJson("/api/runs");
  st.runs = runs;
  const body = document.querySelector("#run-table tbody");
  body.textContent = "";
  for (const r of runs) {
    const tr = document.createElement("tr");
    const pick = document.createElement("input");
    pick.type = "radio"; pick.name = "run"; pick.value = r.id;
    pick.disabled = r.family === "classifier";
    pick.onchange = () => selectRun(r.id);
    const cmp = document.createElement("input");
    cmp.type = "checkbox"; cmp.className = "cmp"; cmp.value = r.id;
    cmp.onchange = () => {
      for (const c of document.querySelectorAll("input.cmp")) if (c !== cmp) c.checked = false;
      st.second = cmp.checked ? r : null;
      refreshTraining();
    };
    const cells = [pick, cmp, r.name, r.family + (r.classes.length ? " (" + r.classes.length + " classes)" : ""),
      r.dataset, r.epochs_done + " / " + r.epochs_planned, r.params.toLocaleString(), summary(r.last)];
    for (const c of cells) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
  const first = runs.find((r) => r.family !== "classifier");
  if (first) {
    document.querySelector(`input[name=run][value="${first.id}"]`).checked = true;
    await selectRun(first.id);
  }
}

async function selectRun(id) {
  const r = st.runs.find((x) => x.id === id);
  st.run = r; st.map = null; st.z = null; st.a = st.b = null; st.yours = null; st.epochs = null;
  $("current").textContent = r.name + " · " + r.family + " · " + r.dataset;
  const box = $("class-box"), sel = $("class");
  sel.textContent = "";
  r.classes.forEach((c, i) => { const o = document.createElement("option"); o.value = i; o.textContent = i + " " + c; sel.appendChild(o); });
  box.hidden = r.classes.length === 0;
  for (const v of ["explorer", "yours", "memo"]) if (!$(v).hidden) await ensureMap();
  if (!$("training").hidden) refreshTraining();
}
$("class").onchange = () => { decodeNow(); };

// ---- training ----
const palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22", "#e377c2"];
const skipKeys = new Set(["epoch", "step", "elapsed_secs", "images_per_sec"]);
let keysChecked = null;

async function refreshTraining() {
  clearTimeout(st.poll);
  if (!st.run || $("training").hidden) return;
  try {
    const runs = [st.run].concat(st.second && st.second.id !== st.run.id ? [st.second] : []);
    const data = await Promise.all(runs.map((r) => getJson(`/api/runs/${r.id}/metrics`)));
    drawCurves(runs, data.map((d) => d.records));
    const ep = await getJson(`/api/runs/${st.run.id}/epochs`);
    const all = Array.from(new Set(ep.samples.concat(ep.reconstructions))).sort((x, y) => x - y);
    const slider = $("epoch");
    const atEnd = !st.epochs || Number(slider.value) === Number(slider.max);
    st.epochs = { all, ...ep };
    if (all.length) {
      slider.min = 0; slider.max = all.length - 1;
      if (atEnd) slider.value = all.length - 1;
      showEpoch();
    }
    showError("");
  } catch (e) { showError("training: " + e.message); }
  st.poll = setTimeout(refreshTraining, 2000);
}

function showEpoch() {
  const e = st.epochs; if (!e || !e.all.length) return;
  const n = e.all[Number($("epoch").value)];
  $("epoch-label").textContent = "epoch " + n;
  const set = (img, has, file) => {
    img.hidden = !has.includes(n);
    const src = `/api/runs/${st.run.id}/epochs/${n}/${file}`;
    if (!img.hidden && !img.src.endsWith(src)) img.src = src;
  };
  set($("epoch-samples"), e.samples, "samples.png");
  set($("epoch-recons"), e.reconstructions, "reconstructions.png");
}
$("epoch").oninput = showEpoch;

function drawCurves(runs, recs) {
  const keys = Array.from(new Set(recs.flatMap((rs) => rs.flatMap(Object.keys)))).filter((k) => !skipKeys.has(k));
  if (!keysChecked) {
    const pref = keys.filter((k) => /loss/.test(k));
    keysChecked = new Set((pref.length ? pref : keys).slice(0, 3));
  }
  const box = $("keys");
  if (box.dataset.keys !== keys.join(",")) {
    box.textContent = ""; box.dataset.keys = keys.join(",");
    for (const k of keys) {
      const l = document.createElement("label"), c = document.createElement("input");
      c.type = "checkbox"; c.checked = keysChecked.has(k);
      c.onchange = () => { if (c.checked) keysChecked.add(k); else keysChecked.delete(k); drawCurves(runs, recs); };
      l.appendChild(c); l.append(" " + k); box.appendChild(l);
    }
  }
  const cv = $("curves"), g = cv.getContext("2d"), W = cv.width, H = cv.height, m = 48;
  g.clearRect(0, 0, W, H);
  const shown = keys.filter((k) => keysChecked.has(k));
  let x1 = 1, y0 = Infinity, y1 = -Infinity;
  for (const rs of recs) rs.forEach((r, i) => {
    x1 = Math.max(x1, r.epoch || i + 1);
    for (const k of shown) if (Number.isFinite(r[k])) { y0 = Math.min(y0, r[k]); y1 = Math.max(y1, r[k]); }
  });
  if (!Number.isFinite(y0)) { g.fillText("no epochs yet", m, H / 2); return; }
  if (y1 === y0) { y1 += 1; y0 -= 1; }
  const X = (e) => m + (W - 2 * m) * (e - 1) / Math.max(1, x1 - 1);
  const Y = (v) => H - m + (v - y0) / (y1 - y0) * -(H - 2 * m);
  g.strokeStyle = "#999"; g.strokeRect(m, m, W - 2 * m, H - 2 * m);
  g.fillStyle = "#333"; g.font = "11px sans-serif";
  for (let i = 0; i <= 4; i++) { const v = y0 + (y1 - y0) * i / 4; g.fillText(fmt(v), 2, Y(v) + 4); }
  g.fillText("epoch 1", m, H - m + 14); g.fillText("epoch " + x1, W - m - 40, H - m + 14);
  recs.forEach((rs, ri) => shown.forEach((k, ki) => {
    g.strokeStyle = palette[ki % palette.length]; g.setLineDash(ri ? [5, 4] : []); g.lineWidth = 2;
    g.beginPath(); let started = false;
    rs.forEach((r, i) => {
      if (!Number.isFinite(r[k])) return;
      const px = X(r.epoch || i + 1), py = Y(r[k]);
      if (started) g.lineTo(px, py); else { g.moveTo(px, py); started = true; }
    });
    g.stroke();
    if (ri === 0) { g.fillStyle = palette[ki % palette.length]; g.fillText(k, m + 8 + ki * 120, m - 8); }
  }));
  g.setLineDash([]);
  if (runs[1]) { g.fillStyle = "#333"; g.fillText("dashed: " + runs[1].name, W - m - 200, m - 8); }
}

// ---- latent explorer ----
async function ensureMap() {
  if (!st.run || st.map) return;
  try {
    const r = st.run;
    $("map-info").textContent = "encoding the map…";
    const m = await getJson(`/api/runs/${r.id}/map`);
    if (st.run !== r) return;
    st.map = m;
    const s = m.map.sliders;
    st.t = s.directions.map(() => 0);
    buildSliders();
    $("map-info").textContent = `${m.map.points.length} codes of the ${m.map.source}, first two principal directions` +
      (m.map.labels ? ", coloured by label" : "");
    drawMap();
    legend();
    await decodeNow();
  } catch (e) { showError("explorer: " + e.message); }
}

function buildSliders() {
  const s = st.map.map.sliders, box = $("sliders");
  box.textContent = "";
  $("slider-note").textContent = s.kind === "dimension"
    ? `a slider per latent dimension (${s.directions.length})`
    : `the ${s.directions.length} leading principal directions of ${st.map.latent} dimensions (in standard deviations)`;
  s.directions.forEach((_, i) => {
    const l = document.createElement("label"), inp = document.createElement("input");
    inp.type = "range"; inp.min = -3; inp.max = 3; inp.step = 0.01; inp.value = st.t[i];
    inp.className = "slider"; inp.dataset.i = i;
    inp.oninput = () => { st.t[i] = Number(inp.value); st.z = zFromSliders(); decodeSoon(); };
    const name = document.createElement("span");
    name.textContent = (s.kind === "dimension" ? "z" : "pc") + (i + 1);
    l.appendChild(name);
    l.appendChild(inp); box.appendChild(l);
  });
  st.z = zFromSliders();
}

function zFromSliders() {
  const s = st.map.map.sliders, z = s.origin.slice();
  s.directions.forEach((d, i) => { const w = st.t[i] * s.scales[i]; d.forEach((v, j) => { z[j] += w * v; }); });
  return z;
}

// Sets the sliders from a point: their coordinates along the (orthonormal) slider directions.
function setPoint(z) {
  const s = st.map.map.sliders;
  st.t = s.directions.map((d, i) => {
    let p = 0; d.forEach((v, j) => { p += v * (z[j] - s.origin[j]); });
    return Math.max(-3, Math.min(3, p / s.scales[i]));
  });
  document.querySelectorAll("input.slider").forEach((inp, i) => { inp.value = st.t[i]; });
  st.z = z.slice();
  drawMap(); decodeSoon();
}

let inFlight = false, pending = false;
function decodeSoon() { if (inFlight) pending = true; else decodeNow(); }
async function decodeNow() {
  if (!st.map || !st.z) return;
  inFlight = true; pending = false;
  const t0 = performance.now();
  try {
    const body = { z: st.z, class: classArg() };
    const r = await postJson(`/api/runs/${st.run.id}/decode`, body);
    await setBlobImage($("decoded"), r);
    st.timings.push(performance.now() - t0);
    $("decoded-info").textContent = `decoded in ${(performance.now() - t0).toFixed(0)} ms`;
    showError("");
  } catch (e) { showError("decode: " + e.message); }
  inFlight = false;
  if (pending) decodeNow();
}

$("reset").onclick = () => { st.t = st.t.map(() => 0); setPoint(zFromSliders()); };
$("random").onclick = () => {
  const s = st.map.map.sliders;
  const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  st.t = s.directions.map(() => Math.max(-3, Math.min(3, gauss())));
  document.querySelectorAll("input.slider").forEach((inp, i) => { inp.value = st.t[i]; });
  st.z = zFromSliders(); drawMap(); decodeSoon();
};

function mapFrame() {
  const pts = st.map.map.points;
  let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
  for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  const pad = 0.05 * Math.max(x1 - x0, y1 - y0, 1e-6), W = $("map").width;
  x0 -= pad; x1 += pad; y0 -= pad; y1 += pad;
  return {
    toPx: ([x, y]) => [(x - x0) / (x1 - x0) * W, W - (y - y0) / (y1 - y0) * W],
    fromPx: (px, py) => [x0 + px / W * (x1 - x0), y0 + (W - py) / W * (y1 - y0)],
  };
}
const project = (z) => {
  const p = st.map.map.pca;
  return [0, 1].map((k) => { const c = p.components[k] || []; let s = 0; c.forEach((v, j) => { s += v * (z[j] - p.mean[j]); }); return s; });
};
// The point of the map's plane at map coordinates (x, y): the mean plus x, y along the two
// leading principal directions.
const fromMap = ([x, y]) => {
  const p = st.map.map.pca, z = p.mean.slice();
  p.components[0].forEach((v, j) => { z[j] += x * v; });
  if (p.components[1]) p.components[1].forEach((v, j) => { z[j] += y * v; });
  return z;
};

function drawMap() {
  if (!st.map) return;
  const cv = $("map"), g = cv.getContext("2d"), f = mapFrame(), m = st.map.map;
  g.clearRect(0, 0, cv.width, cv.height);
  m.points.forEach((p, i) => {
    const [x, y] = f.toPx(p);
    g.fillStyle = m.labels ? labelColour(m.labels[i]) : "#557";
    g.fillRect(x - 1.5, y - 1.5, 3, 3);
  });
  const mark = (z, color, label) => {
    if (!z) return;
    const [x, y] = f.toPx(project(z));
    g.strokeStyle = color; g.lineWidth = 2; g.beginPath(); g.arc(x, y, 7, 0, 7); g.stroke();
    g.fillStyle = color; g.font = "bold 12px sans-serif"; g.fillText(label, x + 9, y - 6);
  };
  mark(st.a, "#000", "A"); mark(st.b, "#000", "B"); mark(st.yours, "#e00", "yours"); mark(st.z, "#06c", "");
}

const labelColour = (l) => palette[l % palette.length];
function legend() {
  const box = $("legend"), m = st.map.map;
  box.textContent = "";
  if (!m.labels) return;
  m.label_names.forEach((name, i) => {
    const s = document.createElement("span");
    s.textContent = name; s.style.background = labelColour(i); box.appendChild(s);
  });
}

let hoverBusy = false;
$("map").onmousemove = async (ev) => {
  if (!st.map || hoverBusy) return;
  hoverBusy = true;
  const f = mapFrame(), r = $("map").getBoundingClientRect();
  const z = fromMap(f.fromPx(ev.clientX - r.left, ev.clientY - r.top));
  try {
    const resp = await postJson(`/api/runs/${st.run.id}/decode`, { z, class: classArg() });
    await setBlobImage($("decoded"), resp);
    $("decoded-info").textContent = "hovered point of the map";
  } catch (e) { showError("decode: " + e.message); }
  hoverBusy = false;
};
$("map").onclick = (ev) => {
  if (!st.map) return;
  const f = mapFrame(), r = $("map").getBoundingClientRect();
  const z = fromMap(f.fromPx(ev.clientX - r.left, ev.clientY - r.top));
  if (ev.shiftKey) st.b = z; else st.a = z;
  setPoint(z);
};
$("set-a").onclick = () => { st.a = st.z && st.z.slice(); drawMap(); };
$("set-b").onclick = () => { st.b = st.z && st.z.slice(); drawMap(); };

$("interp-go").onclick = async () => {
  if (!st.a || !st.b) { showError("interpolation: set A and B first (click and shift-click the map)"); return; }
  try {
    const r = await postJson(`/api/runs/${st.run.id}/interpolate`, {
      a: st.a, b: st.b, steps: Number($("interp-steps").value), mode: $("interp-mode").value, class: classArg(),
    });
    await setBlobImage($("interp"), r); showError("");
  } catch (e) { showError("interpolation: " + e.message); }
};

$("sample-go").onclick = async () => {
  try {
    const r = await postJson(`/api/runs/${st.run.id}/sample`, {
      n: Number($("n").value), seed: Number($("seed").value), class: classArg(),
    });
    await setBlobImage($("samples"), r); showError("");
  } catch (e) { showError("samples: " + e.message); }
};

// ---- your image ----
async function sendYours(blob) {
  if (!st.run) return;
  await ensureMap();
  const cls = classArg(), q = cls === undefined ? "" : "class=" + cls;
  const encode = st.map.can_encode;
  const path = encode
    ? `/api/runs/${st.run.id}/encode?${q}`
    : `/api/runs/${st.run.id}/invert?steps=${Number($("invert-steps").value)}&${q}`;
  $("your-info").textContent = encode ? "encoding…" : "inverting…";
  try {
    const out = await (await api(path, { method: "POST", body: blob })).json();
    $("your-input").src = out.input;
    $("your-output").src = encode ? out.reconstruction : out.image;
    $("your-output").dataset.done = "1";
    $("your-info").textContent = encode
      ? `reconstruction (mean squared error ${out.mse.toFixed(4)})`
      : `inversion: ${out.steps} Adam steps, error ${out.mse.toFixed(4)} (PSNR ${out.psnr.toFixed(1)} dB)`;
    st.yours = out.z; setPoint(out.z);
    showError("");
  } catch (e) { $("your-info").textContent = "failed"; showError("your image: " + e.message); }
}
$("upload").onchange = () => { const f = $("upload").files[0]; if (f) sendYours(f); };

const pad = $("draw"), pen = pad.getContext("2d");
function clearPad() { pen.fillStyle = "#000"; pen.fillRect(0, 0, pad.width, pad.height); }
clearPad();
let drawing = false;
const at = (ev) => { const r = pad.getBoundingClientRect(); return [ev.clientX - r.left, ev.clientY - r.top]; };
pad.onpointerdown = (ev) => { drawing = true; pen.beginPath(); pen.moveTo(...at(ev)); };
pad.onpointermove = (ev) => {
  if (!drawing) return;
  pen.strokeStyle = "#fff"; pen.lineWidth = 22; pen.lineCap = "round"; pen.lineJoin = "round";
  pen.lineTo(...at(ev)); pen.stroke();
};
pad.onpointerup = pad.onpointerleave = () => { drawing = false; };
$("draw-clear").onclick = clearPad;
$("draw-use").onclick = () => pad.toBlob((b) => sendYours(b), "image/png");

// ---- memorisation ----
$("memo-go").onclick = async () => {
  await ensureMap();
  if (!st.z) return;
  try {
    const out = await (await postJson(`/api/runs/${st.run.id}/neighbours`, {
      z: st.z, class: classArg(), k: Number($("memo-k").value),
    })).json();
    $("memo-sample").src = out.sample;
    const fill = (box, list) => {
      box.textContent = "";
      for (const n of list || []) {
        const fig = document.createElement("figure"), img = document.createElement("img");
        img.src = n.image; fig.appendChild(img);
        const cap = document.createElement("figcaption");
        cap.textContent = `#${n.index} d=${n.distance.toFixed(2)}`; fig.appendChild(cap);
        box.appendChild(fig);
      }
    };
    fill($("memo-pixels"), out.pixels);
    fill($("memo-features"), out.features);
    $("memo-features-title").textContent = out.features
      ? `nearest by features (${out.feature_net})` : "nearest by features: genlab ships no classifier for this dataset";
    $("memo-pixels").dataset.count = out.pixels.length;
    showError("");
  } catch (e) { showError("memorisation: " + e.message); }
};

// ---- super-resolution ----
async function loadSr() {
  const sel = $("sr-model");
  if (sel.options.length) return;
  const { models } = await getJson("/api/sr");
  for (const m of models) { const o = document.createElement("option"); o.value = m.id; o.textContent = m.name; sel.appendChild(o); }
}
async function upscale() {
  const f = $("sr-upload").files[0]; if (!f) return;
  $("sr-info").textContent = "upscaling…";
  try {
    const out = await (await api(`/api/sr/${$("sr-model").value}/upscale`, { method: "POST", body: f })).json();
    const bic = $("sr-bicubic"), net = $("sr-out");
    await Promise.all([[bic, out.bicubic], [net, out.sr]].map(([img, src]) => new Promise((ok) => { img.onload = ok; img.src = src; })));
    $("sr-info").textContent = `${out.width}x${out.height} -> ${out.out_width}x${out.out_height} (x${out.scale}); left of the line: the network, right: bicubic`;
    splitSr();
    const a = $("sr-download"); a.href = out.sr; a.hidden = false;
    a.download = f.name.replace(/\.[^.]*$/, "") + `-x${out.scale}.png`;
    showError("");
  } catch (e) { $("sr-info").textContent = "failed"; showError("super-resolution: " + e.message); }
}
function splitSr() {
  const bic = $("sr-bicubic"), clip = $("sr-clip");
  $("sr-out").style.width = bic.clientWidth + "px";
  clip.style.width = (bic.clientWidth * Number($("sr-split").value) / 100) + "px";
}
$("sr-upload").onchange = upscale;
$("sr-model").onchange = upscale;
$("sr-split").oninput = splitSr;

// ---- start ----
loadRuns().then(() => { document.body.dataset.ready = String(performance.now().toFixed(0)); })
  .catch((e) => showError("runs: " + e.message));
