// The draw-a-digit page: pointer events (mouse, pen, touch) draw smooth strokes on a canvas;
// while strokes change, the canvas is sent to POST /predict at most every THROTTLE_MS, and once
// more when a stroke ends; results of a drawing since cleared are dropped. No framework, no CDN.
"use strict";

const THROTTLE_MS = 150;
const SEND_WIDTH = 400;  // the drawing is sent at most this wide (200 high): digits drawn at the
                         // canvas's scale are still ~130 px tall, far more than MNIST's 20, and the
                         // server has 4-25x fewer pixels to read than at the screen's resolution
const LINE = 0.08;   // stroke width as a fraction of the canvas height: after MNIST's scaling a
                     // digit drawn at 2/3 of the height gets strokes ~2.5 px wide, as MNIST's

const stage = document.getElementById("stage");
const ink = document.getElementById("ink");
const boxes = document.getElementById("boxes");
const hint = document.getElementById("hint");
const statusLine = document.getElementById("status");
const numberEl = document.getElementById("number");
const summaryEl = document.getElementById("summary");
const digitsEl = document.getElementById("digits");
const ctx = ink.getContext("2d");
const boxCtx = boxes.getContext("2d");

let blank = true;          // nothing drawn or uploaded
let generation = 0;        // bumped by clear and upload: older answers are stale
let mapping = { scale: 1, dx: 0, dy: 0 };  // image pixels -> canvas pixels, for the boxes
let stroke = null;         // the points of the stroke being drawn
let timer = null, inFlight = false, dirty = false, lastSent = 0;

// --- canvas -------------------------------------------------------------------------------

function fit() {
  const ratio = window.devicePixelRatio || 1;
  const width = Math.round(stage.clientWidth * ratio), height = Math.round(stage.clientHeight * ratio);
  if (ink.width === width && ink.height === height) return;
  const old = blank ? null : copyOf(ink);
  for (const c of [ink, boxes]) { c.width = width; c.height = height; }
  paper();
  if (old) ctx.drawImage(old, 0, 0, width, height);
  boxCtx.clearRect(0, 0, width, height);
}

function copyOf(canvas) {
  const c = document.createElement("canvas");
  c.width = canvas.width; c.height = canvas.height;
  c.getContext("2d").drawImage(canvas, 0, 0);
  return c;
}

function paper() {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ink.width, ink.height);
}

function clearAll() {
  generation++;
  blank = true;
  stroke = null;
  mapping = { scale: 1, dx: 0, dy: 0 };
  paper();
  boxCtx.clearRect(0, 0, boxes.width, boxes.height);
  hint.classList.remove("hidden");
  showNothing("Nothing read yet.");
  setStatus("");
}

// --- drawing ------------------------------------------------------------------------------

function point(event) {
  const rect = ink.getBoundingClientRect();
  return { x: (event.clientX - rect.left) * ink.width / rect.width,
           y: (event.clientY - rect.top) * ink.height / rect.height };
}

function startStroke(event) {
  if (event.button !== undefined && event.button > 0) return;
  event.preventDefault();
  ink.setPointerCapture(event.pointerId);
  blank = false;
  hint.classList.add("hidden");
  ctx.strokeStyle = "#111";
  ctx.fillStyle = "#111";
  ctx.lineWidth = LINE * ink.height;
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  const p = point(event);
  stroke = [p];
  ctx.beginPath();
  ctx.arc(p.x, p.y, ctx.lineWidth / 2, 0, 2 * Math.PI);  // a dot, for a tap
  ctx.fill();
}

function extendStroke(event) {
  if (!stroke) return;
  event.preventDefault();
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const e of (events.length ? events : [event])) {
    const p = point(e), last = stroke[stroke.length - 1];
    if (Math.hypot(p.x - last.x, p.y - last.y) < 1) continue;
    stroke.push(p);
    // a quadratic curve through the midpoints: smooth strokes even from sparse events
    const n = stroke.length;
    const a = n > 2 ? mid(stroke[n - 3], stroke[n - 2]) : stroke[n - 2];
    const b = mid(stroke[n - 2], stroke[n - 1]);
    ctx.beginPath();
    ctx.moveTo(a.x, a.y);
    ctx.quadraticCurveTo(stroke[n - 2].x, stroke[n - 2].y, b.x, b.y);
    ctx.stroke();
  }
  schedule(false);
}

function endStroke(event) {
  if (!stroke) return;
  const last = stroke[stroke.length - 1], before = stroke[stroke.length - 2] || last;
  const a = mid(before, last);
  ctx.beginPath();
  ctx.moveTo(a.x, a.y);
  ctx.lineTo(last.x, last.y);
  ctx.stroke();
  stroke = null;
  schedule(true);
}

function mid(a, b) { return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 }; }

// --- reading ------------------------------------------------------------------------------

function schedule(now) {
  dirty = true;
  if (timer !== null && !now) return;
  clearTimeout(timer);
  const wait = now ? 0 : Math.max(0, THROTTLE_MS - (performance.now() - lastSent));
  timer = setTimeout(() => { timer = null; send(); }, wait);
}

async function send() {
  if (inFlight || !dirty || blank) return;     // the answer in flight will call us again
  dirty = false;
  inFlight = true;
  lastSent = performance.now();
  const asked = generation;
  try {
    const sent = snapshot();
    mapping = { scale: ink.width / sent.width, dx: 0, dy: 0 };
    const blob = await new Promise((resolve) => sent.toBlob(resolve, "image/png"));
    const result = await post(blob, "image/png");
    if (asked === generation) show(result, performance.now() - lastSent);
  } catch (error) {
    if (asked === generation) setStatus(error.message, true);
  } finally {
    inFlight = false;
    if (dirty) schedule(false);
  }
}

function snapshot() {
  if (ink.width <= SEND_WIDTH) return ink;
  const small = document.createElement("canvas");
  small.width = SEND_WIDTH;
  small.height = Math.round(ink.height * SEND_WIDTH / ink.width);
  const g = small.getContext("2d");
  g.imageSmoothingQuality = "high";
  g.drawImage(ink, 0, 0, small.width, small.height);
  return small;
}

async function post(body, type) {
  const init = { method: "POST", body };
  if (type) init.headers = { "Content-Type": type };
  const response = await fetch("/predict?top=10", init);
  let payload;
  try { payload = await response.json(); } catch { payload = {}; }
  if (!response.ok) throw new Error(payload.detail || `the server answered ${response.status}`);
  return payload;
}

async function upload(file) {
  clearAll();
  const asked = generation;
  setStatus(`reading ${file.name}…`);
  try {
    await drawPhoto(file);
  } catch {
    // not displayable by the browser: the server still says what is wrong with it
  }
  const form = new FormData();
  form.append("file", file, file.name);
  const started = performance.now();
  try {
    const result = await post(form);
    if (asked === generation) { blank = false; show(result, performance.now() - started, file.name); }
  } catch (error) {
    if (asked === generation) { showNothing("Could not read this file."); setStatus(`${file.name}: ${error.message}`, true); }
  }
}

async function drawPhoto(file) {
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(ink.width / bitmap.width, ink.height / bitmap.height);
  const w = bitmap.width * scale, h = bitmap.height * scale;
  mapping = { scale, dx: (ink.width - w) / 2, dy: (ink.height - h) / 2 };
  ctx.drawImage(bitmap, mapping.dx, mapping.dy, w, h);
  hint.classList.add("hidden");
}

// --- the result ---------------------------------------------------------------------------

function show(result, ms, name) {
  boxCtx.clearRect(0, 0, boxes.width, boxes.height);
  const where = name ? `${name}: ` : "";
  setStatus(`${where}read in ${Math.round(ms)} ms`);
  if (!result.digits) { showNothing("No digit found."); return; }
  numberEl.replaceChildren(...result.predictions.map((p) => {
    const span = document.createElement("span");
    span.textContent = p.digit;
    if (p.uncertain) { span.className = "unsure"; span.title = "uncertain"; }
    return span;
  }));
  const count = result.predictions.length;
  summaryEl.textContent = `${count} digit${count > 1 ? "s" : ""}, confidence ${percent(result.confidence)}` +
    (result.uncertain ? " — the orange digits are uncertain: the model hesitates" : "");
  digitsEl.replaceChildren(...result.predictions.map((p, i) => chart(p, i, count)));
  result.predictions.forEach(outline);
}

function showNothing(text) {
  numberEl.textContent = "–";
  summaryEl.textContent = text;
  digitsEl.replaceChildren();
}

function chart(prediction, index, count) {
  const box = document.createElement("div");
  box.className = "digit" + (prediction.uncertain ? " unsure" : "");
  const title = document.createElement("h2");
  title.innerHTML = `${count > 1 ? `Digit ${index + 1}: ` : ""}${prediction.digit} <span class="p">${percent(prediction.probability)}</span>`;
  const bars = document.createElement("div");
  bars.className = "bars";
  const probability = new Map(prediction.top.map((t) => [t.digit, t.probability]));
  for (let d = 0; d <= 9; d++) {
    const p = probability.get(d) || 0;
    const row = [span("label", d), span("track", ""), span("value", percent(p))];
    const fill = span("fill", "");
    fill.style.width = `${(100 * p).toFixed(1)}%`;
    row[1].appendChild(fill);
    if (String(d) === prediction.digit) row.forEach((el) => el.classList.add("best"));
    bars.append(...row);
  }
  box.append(title, bars);
  return box;
}

function span(cls, text) {
  const el = document.createElement("span");
  el.className = cls;
  el.textContent = text;
  return el;
}

function outline(prediction) {
  const [x0, y0, x1, y1] = prediction.box.map((v, i) => v * mapping.scale + (i % 2 ? mapping.dy : mapping.dx));
  const pad = 0.02 * boxes.height;
  boxCtx.strokeStyle = prediction.uncertain ? "#c2410c" : "#2f6fed";
  boxCtx.fillStyle = boxCtx.strokeStyle;
  boxCtx.lineWidth = Math.max(1, 0.006 * boxes.height);
  boxCtx.setLineDash([6, 4]);
  boxCtx.strokeRect(x0 - pad, y0 - pad, x1 - x0 + 2 * pad, y1 - y0 + 2 * pad);
  boxCtx.font = `${Math.round(0.07 * boxes.height)}px system-ui, sans-serif`;
  boxCtx.fillText(prediction.digit, x0 - pad, Math.max(0.07 * boxes.height, y0 - pad - 4));
}

function percent(p) { return p >= 0.9995 ? "100%" : `${(100 * p).toFixed(p >= 0.1 ? 1 : 2)}%`; }

function setStatus(text, error = false) {
  statusLine.textContent = text;
  statusLine.classList.toggle("error", error);
}

// --- wiring -------------------------------------------------------------------------------

ink.addEventListener("pointerdown", startStroke);
ink.addEventListener("pointermove", extendStroke);
ink.addEventListener("pointerup", endStroke);
ink.addEventListener("pointercancel", endStroke);
document.getElementById("clear").addEventListener("click", clearAll);
document.getElementById("upload").addEventListener("change", (event) => {
  const file = event.target.files[0];
  event.target.value = "";  // choosing the same file again still fires
  if (file) upload(file);
});
window.addEventListener("resize", fit);
fit();
paper();
