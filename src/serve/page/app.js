// framecost serve: the page. Plain browser JavaScript, served by framecost itself (no build step, nothing
// loaded from elsewhere). It asks the server for a run, reads the run's server-sent events from the
// response, draws x_t and the predicted x0 after every network call, and plots every finished run.

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const COLOURS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#0a7480"];
const CLIP_FPS = 6;

let options = null;
/** the run this tab is making: { id, request, frames: [] } */
let current = null;
/** finished runs (this tab's and the server's earlier ones), for the charts and the table */
const finished = new Map();
let clipTimer = null;

// ---- numbers as the page shows them ----

/** USD with 3 significant digits, as `framecost generate` prints them (cost/run.ts usd). */
function usd(x) {
  if (x === null || x === undefined) return "not priced";
  if (x === 0) return "$0";
  if (Math.abs(x) >= 100) return `$${x.toFixed(0)}`;
  if (Math.abs(x) >= 1) return `$${x.toFixed(2)}`;
  return `$${Number(x.toPrecision(3))}`;
}
const gflop = (f) => `${(f / 1e9).toFixed(3)} GFLOP`;
const ms = (v) => (v === null || v === undefined ? "n/a" : `${v.toFixed(2)} ms`);

/** Sets a counter's text and its exact value (data-value: what the tests compare with run.json). */
function counter(id, text, value) {
  const el = $(id);
  el.textContent = text;
  el.dataset.value = value === null || value === undefined ? "" : String(value);
}

function status(text, error = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", error);
}

// ---- images ----

function rgbBytes(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** Draws H x W x 3 bytes on a canvas of that size (CSS enlarges it, pixelated). */
function draw(canvas, bytes, size) {
  if (canvas.width !== size) {
    canvas.width = size;
    canvas.height = size;
  }
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(size, size);
  for (let i = 0, j = 0; i < bytes.length; i += 3, j += 4) {
    img.data[j] = bytes[i];
    img.data[j + 1] = bytes[i + 1];
    img.data[j + 2] = bytes[i + 2];
    img.data[j + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function playClip(frames, size) {
  clearInterval(clipTimer);
  if (frames.length === 0) return;
  let i = 0;
  const show = () => {
    draw($("clip"), frames[i], size);
    $("clip-caption").textContent =
      frames.length > 1
        ? `clip: frame ${i + 1} of ${frames.length}, playing at ${CLIP_FPS} fps`
        : "the finished frame";
    $("clip").dataset.frame = String(i);
    i = (i + 1) % frames.length;
  };
  show();
  if (frames.length > 1) clipTimer = setInterval(show, 1000 / CLIP_FPS);
}

// ---- the form ----

function selectedModel() {
  return options.models.find((m) => m.dir === $("model").value);
}

function onModelChange() {
  const m = selectedModel();
  if (!m) return;
  const sampling = m.sampling ?? options.defaults;
  $("sampler").value = sampling.sampler;
  $("steps").value = String(sampling.steps);
  $("guidance").value = String(m.guidance ? m.guidance.weight : 0);
  $("guidance").disabled = !m.guidance;
  $("model-note").textContent = m.sampling
    ? `a distilled student: made for ${m.sampling.sampler} at ${m.sampling.steps} step(s); no guide`
    : m.guidance
      ? `guided by an early snapshot of itself at t >= ${m.guidance.fromT} (each guided step costs a second NFE; 0 turns it off)`
      : "no guide";
}

function onGpuChange() {
  const g = options.gpus.find((x) => x.id === $("gpu").value);
  $("gpu-price").value = g?.usdPerHour === null || g === undefined ? "" : String(g.usdPerHour);
  $("gpu-name").textContent = g ? g.id : "GPU";
}

function fill(select, items, value, label) {
  select.replaceChildren(
    ...items.map((it) => {
      const o = document.createElement("option");
      o.value = value(it);
      o.textContent = label(it);
      return o;
    }),
  );
}

function numberOrNull(id) {
  const v = $(id).value.trim();
  return v === "" ? null : Number(v);
}

function request() {
  return {
    model: $("model").value,
    sampler: $("sampler").value,
    steps: Number($("steps").value),
    seed: Number($("seed").value),
    guidance: $("guidance").disabled ? null : numberOrNull("guidance"),
    frames: Number($("frames").value),
    gpu: $("gpu").value,
    gpuUsdPerHour: numberOrNull("gpu-price"),
    localUsdPerHour: numberOrNull("local-price"),
  };
}

function running(on) {
  $("generate").disabled = on;
  $("stop").disabled = !on;
}

// ---- a run's events ----

/** The latest step event and the latest one with pictures, drawn at the next animation frame. */
const live = { step: null, images: null, raf: 0 };

function drawLive() {
  live.raf = 0;
  const { step: d, images } = live;
  live.step = null;
  live.images = null;
  if (images) {
    draw($("xt"), rgbBytes(images.xt), current.size);
    draw($("x0"), rgbBytes(images.x0), current.size);
    $("t-now").textContent = String(images.t);
  }
  if (!d) return;
  $("counters").className = "live";
  counter("c-step", `${d.step} / ${d.steps}`, d.step);
  counter("c-frame", `${d.frame + 1} / ${d.frames}`, d.frame + 1);
  counter("c-nfe", `${d.nfe} / ${d.nfeTotal}`, d.nfe);
  counter("c-flops", gflop(d.flops), d.flops);
  counter("c-ms", ms(d.msPerNfe), d.msPerNfe);
  counter("c-usd-local", usd(d.usdPerVideoMinute.local), d.usdPerVideoMinute.local);
  counter("c-usd-gpu", usd(d.usdPerVideoMinute.gpu), d.usdPerVideoMinute.gpu);
  $("counters-note").textContent = "live: the run so far, as if it ended now";
}

/** Draws what is waiting now (before a run's end replaces the counters). */
function flushLive() {
  if (!live.raf) return;
  cancelAnimationFrame(live.raf);
  drawLive();
}

const handlers = {
  queued(d) {
    current.id = d.id;
    status(d.ahead > 0 ? `queued: ${d.ahead} run(s) ahead of this one` : "starting...");
  },
  start(d) {
    current.size = d.imageSize;
    status(`running on ${d.backend}: ${current.request.sampler} ${d.steps} steps, ${d.frames} frame(s)`);
  },
  step(d) {
    // a step can take 2 ms and a screen shows 60 pictures a second: keep the latest, draw once per frame
    live.step = d;
    if (d.xt) live.images = d;
    live.raf ||= requestAnimationFrame(drawLive);
  },
  frame(d) {
    const bytes = rgbBytes(d.rgb);
    current.frames[d.frame] = bytes;
    const c = document.createElement("canvas");
    draw(c, bytes, current.size);
    $("strip").append(c);
    playClip(current.frames.filter(Boolean), current.size);
  },
  done(d) {
    flushLive();
    $("counters").className = "final";
    counter("c-step", `${d.steps} in all`, d.steps);
    counter("c-frame", `${d.frames} / ${d.request.frames}`, d.frames);
    counter("c-nfe", `${d.nfe} (${d.nfePerFrame} per frame)`, d.nfe);
    counter("c-flops", gflop(d.flops), d.flops);
    counter("c-ms", ms(d.msPerNfe), d.msPerNfe);
    counter("c-usd-local", usd(d.usdPerVideoMinute.local), d.usdPerVideoMinute.local);
    counter("c-usd-gpu", usd(d.usdPerVideoMinute.gpu), d.usdPerVideoMinute.gpu);
    $("counters-note").textContent =
      `from run ${d.id}'s record (run.json): ${d.complete ? "complete" : "stopped, incomplete"}`;
    const a = document.createElement("a");
    a.href = d.runJson;
    a.download = "run.json";
    a.textContent = `download run.json (${d.id})`;
    $("download").replaceChildren(a);
    playClip(
      d.frameRgb.map((b) => rgbBytes(b)),
      current.size,
    );
    status(
      d.complete
        ? `done: ${d.frames} frame(s), ${d.nfe} NFEs, ${(d.wallMs / 1000).toFixed(2)} s of generation`
        : `stopped after ${d.nfe} NFEs; run.json is marked incomplete`,
    );
    finished.set(d.id, d);
    redraw();
  },
  stopped() {
    status("stopped before it started");
  },
  failed(d) {
    flushLive();
    status(`failed: ${d.message}`, true);
  },
};

/** Reads a text/event-stream body and calls the handler of each event. */
async function readEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) event = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      handlers[event]?.(JSON.parse(data));
    }
  }
}

async function generate(e) {
  e.preventDefault();
  if (current) return;
  const req = request();
  current = { id: null, request: req, frames: [], size: 32 };
  running(true);
  clearInterval(clipTimer);
  $("strip").replaceChildren();
  $("download").replaceChildren();
  $("counters").className = "";
  status("asking the server...");
  try {
    const res = await fetch("/api/runs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(req),
    });
    if (!res.ok) {
      const err = await res.json();
      status(`refused: ${err.error}`, true);
      return;
    }
    await readEvents(res.body);
  } catch (err) {
    status(`lost the server: ${err.message}`, true);
  } finally {
    current = null;
    running(false);
  }
}

async function stop() {
  if (!current?.id) return;
  $("stop").disabled = true;
  status("stopping within a step...");
  await fetch(`/api/runs/${current.id}/stop`, { method: "POST" });
}

// ---- charts and table ----

function el(name, attrs, text) {
  const n = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, String(v));
  if (text !== undefined) n.textContent = text;
  return n;
}

const seriesKey = (r) =>
  `${r.request.model} ${r.request.sampler}${r.request.guidance === 0 ? " unguided" : ""}`;

/** A small scatter plot with a log x axis; points of one series joined in x order; `real`: a dashed line. */
function chart(svg, points, { xLabel, xFormat, title, real, colourOf }) {
  const W = 440;
  const H = 280;
  const m = { l: 52, r: 14, t: 22, b: 40 };
  svg.replaceChildren(el("text", { x: m.l, y: 14, class: "title" }, title));
  if (points.length === 0) {
    svg.append(el("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "finished runs appear here"));
    return;
  }
  const xs = points.map((p) => Math.log10(p.x));
  const x0 = Math.floor(Math.min(...xs));
  const x1 = Math.max(Math.ceil(Math.max(...xs)), x0 + 1);
  const yMax = Math.max(0.8, ...points.map((p) => p.y));
  const sx = (v) => m.l + ((Math.log10(v) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const sy = (v) => H - m.b - (v / yMax) * (H - m.t - m.b);
  for (let d = x0; d <= x1; d++) {
    const x = sx(10 ** d);
    svg.append(el("line", { x1: x, x2: x, y1: m.t, y2: H - m.b, class: "grid" }));
    svg.append(el("text", { x, y: H - m.b + 14, "text-anchor": "middle" }, xFormat(10 ** d)));
  }
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    svg.append(el("line", { x1: m.l, x2: W - m.r, y1: sy(v), y2: sy(v), class: "grid" }));
    svg.append(el("text", { x: m.l - 6, y: sy(v) + 4, "text-anchor": "end" }, v.toFixed(1)));
  }
  svg.append(el("line", { x1: m.l, x2: W - m.r, y1: H - m.b, y2: H - m.b, class: "axis" }));
  svg.append(el("line", { x1: m.l, x2: m.l, y1: m.t, y2: H - m.b, class: "axis" }));
  svg.append(el("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle" }, xLabel));
  const mid = (m.t + H - m.b) / 2;
  svg.append(
    el(
      "text",
      { x: 14, y: mid, transform: `rotate(-90 14 ${mid})`, "text-anchor": "middle" },
      "compactness (higher = cleaner)",
    ),
  );
  if (real !== null) {
    svg.append(el("line", { x1: m.l, x2: W - m.r, y1: sy(real), y2: sy(real), class: "real" }));
    svg.append(
      el("text", { x: m.l + 4, y: sy(real) - 4, class: "real-label" }, `real frames ${real.toFixed(2)}`),
    );
  }
  for (const key of new Set(points.map((p) => p.series))) {
    const colour = colourOf(key);
    const ps = points.filter((p) => p.series === key).sort((a, b) => a.x - b.x);
    if (ps.length > 1)
      svg.append(
        el("polyline", {
          points: ps.map((p) => `${sx(p.x)},${sy(p.y)}`).join(" "),
          fill: "none",
          stroke: colour,
          "stroke-width": 1.5,
          "stroke-opacity": 0.6,
        }),
      );
    for (const p of ps) {
      svg.append(el("circle", { cx: sx(p.x), cy: sy(p.y), r: 4, fill: colour, "data-run": p.id }));
      svg.append(el("text", { x: sx(p.x) + 6, y: sy(p.y) - 5 }, p.label));
    }
  }
}

function redraw() {
  const done = [...finished.values()].filter((r) => r.complete && r.quality);
  const series = [...new Set(done.map(seriesKey))];
  const colourOf = (key) => COLOURS[series.indexOf(key) % COLOURS.length];
  const real = done.length > 0 ? done[0].quality.realCompactness : null;
  const point = (r, x) => ({
    id: r.id,
    x,
    y: r.quality.compactness,
    series: seriesKey(r),
    label: `${r.request.steps}`,
  });
  chart(
    $("chart-cost"),
    done.filter((r) => r.usdPerVideoMinute.gpu > 0).map((r) => point(r, r.usdPerVideoMinute.gpu)),
    {
      xLabel: "USD per video minute on the run's GPU (log scale)",
      xFormat: usd,
      title: "quality against cost (labels: steps)",
      real,
      colourOf,
    },
  );
  chart(
    $("chart-steps"),
    done.map((r) => point(r, r.request.steps)),
    { xLabel: "sampler steps (log scale)", xFormat: String, title: "quality against steps", real, colourOf },
  );
  $("legend").replaceChildren(
    ...series.map((key) => {
      const li = document.createElement("li");
      const dot = document.createElement("span");
      dot.className = "dot";
      dot.style.background = colourOf(key);
      li.append(dot, key);
      return li;
    }),
  );
  const rows = [...finished.values()].map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.run = r.id;
    const cells = [
      r.id.slice(9, 15),
      r.request.model,
      `${r.request.sampler}${r.complete ? "" : " (stopped)"}`,
      r.request.steps,
      r.nfePerFrame,
      r.frames,
      ms(r.msPerNfe),
      usd(r.usdPerVideoMinute.local),
      `${usd(r.usdPerVideoMinute.gpu)} (${r.request.gpu})`,
      r.quality ? r.quality.compactness.toFixed(3) : "-",
      r.quality ? `${r.quality.shapes} / ${r.quality.specks}` : "-",
    ];
    for (const c of cells) {
      const td = document.createElement("td");
      td.textContent = String(c);
      tr.append(td);
    }
    const td = document.createElement("td");
    const a = document.createElement("a");
    a.href = r.runJson;
    a.download = "run.json";
    a.textContent = "run.json";
    td.append(a);
    tr.append(td);
    return tr;
  });
  $("runs").tBodies[0].replaceChildren(...rows.reverse());
}

// ---- start ----

async function init() {
  options = await (await fetch("/api/options")).json();
  fill(
    $("model"),
    options.models,
    (m) => m.dir,
    (m) => m.dir.replace(/^.*\//, "") + (m.sampling ? "" : " (teacher)"),
  );
  fill(
    $("sampler"),
    options.samplers,
    (s) => s.name,
    (s) => s.name,
  );
  fill(
    $("gpu"),
    options.gpus,
    (g) => g.id,
    (g) => g.id,
  );
  $("gpu").value = options.defaults.gpu;
  onModelChange();
  onGpuChange();
  $("model").addEventListener("change", onModelChange);
  $("gpu").addEventListener("change", onGpuChange);
  $("run-form").addEventListener("submit", generate);
  $("stop").addEventListener("click", stop);
  const earlier = await (await fetch("/api/runs")).json();
  for (const r of earlier.runs) if (r.result) finished.set(r.id, r.result);
  redraw();
  status(options.models.length > 0 ? "ready" : "no model folders found", options.models.length === 0);
}

init().catch((err) => status(`could not load the options: ${err.message}`, true));
