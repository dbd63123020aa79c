/**
 * `framecost serve` over plain HTTP: the 400s and what they say, path traversal, the allowed model folders,
 * one run's event stream against its run.json and against `runGeneration` with the same options (the same
 * metering as generate), two streams at once without mixing, Stop, a closed connection stopping its run,
 * and the command line. Runs are tiny: a few steps, one frame, onnx on one thread.
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { gpuIds, shippedCatalog } from "../src/cost/index.ts";
import { frameToRgb } from "../src/media/frames.ts";
import { parseRunRecord } from "../src/meter/record.ts";
import { runGeneration } from "../src/run/generation.ts";
import type { ModelEntry } from "../src/serve/models.ts";
import type { RunResult } from "../src/serve/runs.ts";
import { type ServeHandle, startServer } from "../src/serve/server.ts";
import { makeModelsFolder } from "./helpers/serve-models.ts";

const root = mkdtempSync(join(tmpdir(), "framecost-serve-"));
const models = join(root, "models");
const out = join(root, "out");
const { teacher: TEACHER, student: STUDENT } = makeModelsFolder(models);
let server: ServeHandle;

beforeAll(async () => {
  server = await startServer({
    host: "127.0.0.1",
    port: 0,
    modelsDir: models,
    outDir: out,
    backend: "onnx",
    threads: 1,
    catalog: shippedCatalog(),
  });
});

afterAll(async () => {
  await server?.close();
  rmSync(root, { recursive: true, force: true });
});

interface Event {
  event: string;
  data: Record<string, unknown> & { id?: string };
}

/** Reads a text/event-stream body to its end (or until `until` says stop); `events` fills as they come. */
async function readEvents(
  res: Response,
  until?: (e: Event) => boolean,
  events: Event[] = [],
): Promise<Event[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return events;
    buffer += decoder.decode(value, { stream: true });
    for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const event = /^event: (.*)$/m.exec(block)?.[1] ?? "message";
      const data = JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? "null");
      events.push({ event, data });
      if (until?.({ event, data })) {
        await reader.cancel();
        return events;
      }
    }
  }
}

const base = {
  model: TEACHER,
  sampler: "ddim",
  steps: 4,
  seed: 7,
  guidance: null,
  frames: 1,
  gpu: "h100-sxm",
  gpuUsdPerHour: null,
  localUsdPerHour: 0.5,
};

function post(body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(`${server.url}api/runs`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

/** A GET with the path sent exactly as given (fetch would resolve the ".." before sending it). */
function rawGet(path: string): Promise<{ status: number; body: string }> {
  const url = new URL(server.url);
  return new Promise((done, fail) => {
    const req = httpRequest({ host: url.hostname, port: url.port, path, method: "GET" }, (res) => {
      let body = "";
      res.on("data", (c) => {
        body += c;
      });
      res.on("end", () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", fail);
    req.end();
  });
}

async function runStatus(id: string): Promise<string | undefined> {
  const list = (await (await fetch(`${server.url}api/runs`)).json()) as {
    runs: Array<{ id: string; status: string }>;
  };
  return list.runs.find((r) => r.id === id)?.status;
}

async function waitForStatus(id: string, wanted: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await runStatus(id)) === wanted) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`run ${id} never became ${wanted} (is ${await runStatus(id)})`);
}

const b64rgb = (frame: Float32Array) => Buffer.from(frameToRgb(frame, 32, 32)).toString("base64");

describe("framecost serve: what may be asked", () => {
  it("offers the model folders under --models (teacher first), the samplers and the catalog's GPUs", async () => {
    const res = await fetch(`${server.url}api/options`);
    expect(res.status).toBe(200);
    const o = (await res.json()) as {
      models: ModelEntry[];
      samplers: Array<{ name: string }>;
      gpus: Array<{ id: string; usdPerHour: number | null }>;
    };
    expect(o.models.map((m) => m.dir)).toEqual([TEACHER, STUDENT]);
    expect(o.models[0]).toMatchObject({ role: "teacher", guidance: { weight: 2, fromT: 500 } });
    expect(o.models[1]).toMatchObject({ role: "student", sampling: { sampler: "ddim", steps: 2 } });
    expect(o.models[1].guidance).toBeUndefined();
    expect(o.samplers.map((s) => s.name)).toEqual(["ddpm", "ddim", "euler", "heun", "dpmpp-2m"]);
    expect(o.gpus.find((g) => g.id === "h100-sxm")?.usdPerHour).toBe(2.69);
  });

  it("answers a bad request with 400 and one line naming the field, the value and what it must be", async () => {
    const cases: Array<[unknown, string]> = [
      [{ ...base, sampler: "foo" }, 'sampler must be one of ddpm, ddim, euler, heun, dpmpp-2m; got "foo"'],
      [{ ...base, steps: 0 }, "steps must be an integer between 1 and 1000, got 0"],
      [{ ...base, steps: 2.5 }, "steps must be an integer between 1 and 1000, got 2.5"],
      [{ ...base, frames: 0 }, "frames must be an integer between 1 and 64, got 0"],
      [{ ...base, seed: -1 }, "seed must be an integer between 0 and 2147483647, got -1"],
      [{ ...base, model: "src" }, `model must be one of ${TEACHER}, ${STUDENT}; got "src"`],
      [{ ...base, model: "/etc" }, `model must be one of ${TEACHER}, ${STUDENT}; got "/etc"`],
      [
        { ...base, model: `${models}/not-a-model` },
        `model must be one of ${TEACHER}, ${STUDENT}; got "${models}/not-a-model"`,
      ],
      [
        { ...base, model: `${models}/../models/tiny` },
        `model must be one of the listed folders (${TEACHER}, ${STUDENT}); a path with ".." is refused, got "${models}/../models/tiny"`,
      ],
      [
        { ...base, model: STUDENT, guidance: 2 },
        `guidance must be 0 for ${STUDENT}: it has no guide (models/tiny has one), got 2`,
      ],
      [{ ...base, gpu: "tpu" }, `gpu must be one of ${gpuIds(shippedCatalog()).join(", ")}; got "tpu"`],
      [
        { ...base, localUsdPerHour: -1 },
        "localUsdPerHour must be a number >= 0 (USD per hour) or null, got -1",
      ],
      [{ ...base, sampler: undefined }, "sampler is missing; the request must give it"],
      ["not json", 'the request body must be JSON, got "not json"'],
      [[1, 2], "the request must be a JSON object with model, sampler, steps, ...; got [1,2]"],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      expect(await res.json()).toEqual({ error: message });
    }
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });

  it("refuses a path with '..' (also encoded) with 400, and serves no file outside the page and its runs", async () => {
    for (const path of [
      "/runs/../../etc/passwd",
      "/runs/%2e%2e/%2e%2e/package.json",
      "/..%2fpackage.json",
      "/%2E%2E/models/tiny/model.json",
      "/runs/x/..%5c..%5cpackage.json",
    ]) {
      const r = await rawGet(path);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body).error).toContain('a path with ".."');
    }
    for (const path of [
      "/package.json",
      "/src/serve/server.ts",
      "/page/app.js",
      "/models/tiny/model.json",
      `/runs/20260101-000000-deadbeef/run.json`,
      "/runs/run.json",
    ]) {
      const r = await rawGet(path);
      expect(r.status, path).toBe(404);
      expect(r.body).not.toContain("framecost-dit-weights");
      expect(r.body).not.toContain('"dependencies"');
    }
    const page = await rawGet("/app.js");
    expect(page.status).toBe(200);
    expect(page.body).toContain("readEvents");
  });
});

describe("framecost serve: runs", () => {
  it("streams every step with x_t, predicted x0 and the counters; the numbers at the end are run.json's, and the run is generate's", async () => {
    const res = await post(base);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/event-stream; charset=utf-8");
    const events = await readEvents(res);
    expect(events.map((e) => e.event)).toEqual([
      "queued",
      "start",
      "step",
      "step",
      "step",
      "step",
      "frame",
      "done",
    ]);
    const id = events[0].data.id as string;
    expect(events.every((e) => e.data.id === id)).toBe(true);
    const steps = events.filter((e) => e.event === "step").map((e) => e.data);
    // ddim 4 steps (trailing: t = 999, 749, 499, 249); the guide runs beside the model where t >= 500
    expect(steps.map((s) => [s.step, s.t, s.nfe, s.nfeTotal])).toEqual([
      [1, 999, 2, 6],
      [2, 749, 4, 6],
      [3, 499, 5, 6],
      [4, 249, 6, 6],
    ]);
    // pictures: at most 60 a second, always the first and the frame's last step; each one new
    const pictured = steps.filter((s) => s.xt !== undefined);
    expect(pictured[0]).toBe(steps[0]);
    expect(pictured.at(-1)).toBe(steps[3]);
    expect(new Set(pictured.map((s) => s.xt)).size).toBe(pictured.length);
    expect(new Set(pictured.map((s) => s.x0)).size).toBe(pictured.length);
    expect(Buffer.from(steps[0].xt as string, "base64").length).toBe(32 * 32 * 3);

    const done = events.at(-1)!.data as unknown as RunResult & { frameRgb: string[] };
    const file = join(out, id, "run.json");
    const record = parseRunRecord(readFileSync(file, "utf8"), file) as ReturnType<typeof parseRunRecord> & {
      quality: Record<string, number>;
      serve: Record<string, unknown>;
      cost: { usdPerVideoMinute: { local: number | null; byGpu: Record<string, number> } };
    };
    expect(record.complete).toBe(true);
    expect(done).toMatchObject({
      status: "done",
      complete: true,
      nfe: record.totals.nfe,
      steps: record.totals.steps,
      flops: record.totals.flops,
      wallMs: record.totals.wallMs,
      msPerNfe: record.nfeTiming.medianMs,
      nfePerFrame: record.sampler.nfePerFrame,
      usdPerVideoMinute: {
        local: record.cost.usdPerVideoMinute.local,
        gpu: record.cost.usdPerVideoMinute.byGpu["h100-sxm"],
      },
      quality: record.quality,
      runJson: `/runs/${id}/run.json`,
    });
    // pinned: 6 NFEs of the tiny DiT (114.9 MFLOP each, counted on onnx) plus the sampler's arithmetic
    expect(record.totals).toMatchObject({ frames: 1, steps: 4, nfe: 6, calls: 4 });
    expect(record.totals.flops).toBe(PINNED_FLOPS);
    // ddim 4 steps of the teacher, seed 7: one ragged shape and specks; real first frames 0.652 (README)
    expect(record.quality).toMatchObject({ shapes: 1, specks: 8 });
    expect(record.quality.compactness).toBeCloseTo(0.22796, 4);
    expect(record.quality.realCompactness).toBeCloseTo(0.65211, 4);
    expect(record.serve).toMatchObject({ runId: id, stopped: null, request: base });
    // the live counters of the last step: the network's NFEs and FLOPs so far (the sampler's come at the frame's end)
    expect(steps[3].nfe).toBe(record.totals.nfe);
    expect(steps[3].flops).toBe(record.totals.flops - record.samplerFlops);
    // priced as generate prices: this machine at $0.5/h over the measured wall clock, the GPU by roofline
    expect(record.cost.usdPerVideoMinute.local).toBeCloseTo(
      (record.totals.wallMs / 3.6e6) * 0.5 * 24 * 60,
      12,
    );

    // the same run through runGeneration, as generate makes it: the same frame and the same counted work
    const direct = await runGeneration({
      modelDir: TEACHER,
      sampler: "ddim",
      steps: 4,
      frames: 1,
      fps: 24,
      seed: 7,
      backend: "onnx",
      threads: 1,
      batchCalls: true,
      convention: "flops",
    });
    expect(done.frameRgb).toEqual([b64rgb(direct.frames[0])]);
    expect(events[6].data.rgb).toBe(b64rgb(direct.frames[0]));
    expect(direct.record.totals).toMatchObject({
      nfe: record.totals.nfe,
      calls: record.totals.calls,
      flops: record.totals.flops,
    });

    // run.json for download: the file as written, as an attachment
    const dl = await fetch(`${server.url}runs/${id}/run.json`);
    expect(dl.status).toBe(200);
    expect(dl.headers.get("content-disposition")).toBe('attachment; filename="run.json"');
    expect(await dl.text()).toBe(readFileSync(file, "utf8"));
    const png = await fetch(`${server.url}runs/${id}/frames/frame-000.png`);
    expect(png.headers.get("content-type")).toBe("image/png");
    expect(readdirSync(join(out, id)).sort()).toEqual(["frames", "run.json"]);
  });

  it("runs two requests at once one after the other, each stream with only its own events and pictures", async () => {
    // a long enough for b to arrive while it runs
    const a = { ...base, seed: 1, steps: 40, guidance: null as number | null };
    const b = { ...base, model: STUDENT, sampler: "ddim", steps: 2, seed: 2, guidance: 0 as number | null };
    const [ea, eb] = await Promise.all([
      post(a).then((r) => readEvents(r)),
      post(b).then((r) => readEvents(r)),
    ]);
    for (const [events, req] of [
      [ea, a],
      [eb, b],
    ] as const) {
      const id = events[0].data.id;
      expect(events.every((e) => e.data.id === id)).toBe(true);
      expect(events.at(-1)!.event).toBe("done");
      expect(events.at(-1)!.data.request).toEqual(req);
      expect(events.filter((e) => e.event === "step").map((e) => e.data.step)).toEqual(
        Array.from({ length: req.steps }, (_, i) => i + 1),
      );
    }
    expect(ea[0].data.id).not.toBe(eb[0].data.id);
    // the second one asked waited for the first
    const ahead = [ea, eb].map((e) => e[0].data.ahead).sort();
    expect(ahead).toEqual([0, 1]);
    // each stream's frame is the one its own request makes alone
    const alone = async (r: typeof a) =>
      b64rgb(
        (
          await runGeneration({
            modelDir: r.model,
            sampler: r.sampler,
            steps: r.steps,
            frames: 1,
            fps: 24,
            seed: r.seed,
            backend: "onnx",
            threads: 1,
            batchCalls: true,
            guidance: r.guidance === null ? undefined : { weight: r.guidance },
            convention: "flops",
          })
        ).frames[0],
      );
    expect(ea.at(-1)!.data.frameRgb).toEqual([await alone(a)]);
    expect(eb.at(-1)!.data.frameRgb).toEqual([await alone(b)]);
  });

  it("Stop ends a run within a step: run.json marked incomplete; a queued run whose connection closes never runs", async () => {
    const long = await post({ ...base, steps: 1000 });
    const longSeen: Event[] = [];
    const longEvents = readEvents(long, undefined, longSeen);
    // wait until it steps, then queue a second one and close its connection
    for (let i = 0; i < 500 && !longSeen.some((e) => e.event === "step"); i++)
      await new Promise((r) => setTimeout(r, 10));
    const longId = longSeen[0].data.id as string;
    const abort = new AbortController();
    const queued = await post({ ...base, seed: 99 }, abort.signal);
    const first = await readEvents(queued, () => true);
    expect(first[0]).toMatchObject({ event: "queued", data: { ahead: 1 } });
    const queuedId = first[0].data.id as string;
    abort.abort();
    await waitForStatus(queuedId, "stopped");
    // a queued run stopped with Stop is told so, and its stream ends
    const third = await post({ ...base, seed: 98 });
    const thirdEvents = readEvents(third);
    let thirdId = "";
    for (let i = 0; i < 200 && !thirdId; i++) {
      thirdId = server.runner.list().find((r) => r.status === "queued")?.id ?? "";
      await new Promise((r) => setTimeout(r, 10));
    }
    expect((await fetch(`${server.url}api/runs/${thirdId}/stop`, { method: "POST" })).status).toBe(200);
    expect((await thirdEvents).map((e) => [e.event, e.data.id])).toEqual([
      ["queued", thirdId],
      ["stopped", thirdId],
    ]);

    const stop = await fetch(`${server.url}api/runs/${longId}/stop`, { method: "POST" });
    expect(await stop.json()).toEqual({ id: longId, stopping: true });
    const events = await longEvents;
    const done = events.at(-1)!;
    expect(done.event).toBe("done");
    expect(done.data).toMatchObject({ status: "stopped", complete: false, stopped: "stop" });
    const record = JSON.parse(readFileSync(join(out, longId, "run.json"), "utf8"));
    expect(record.complete).toBe(false);
    expect(record.serve.stopped).toBe("stop");
    expect(record.totals.nfe).toBe(done.data.nfe);
    expect(record.totals.nfe).toBeLessThan(1500);
    // one step after the last step event at most
    const lastStep = events.filter((e) => e.event === "step").at(-1)!.data;
    expect(record.totals.nfe - (lastStep.nfe as number)).toBeLessThanOrEqual(2);
    expect(existsSync(join(out, queuedId))).toBe(false);
    expect(existsSync(join(out, thirdId))).toBe(false);
    expect((await fetch(`${server.url}api/runs/${longId}/stop`, { method: "POST" })).status).toBe(404);
  });

  it("a closed connection stops its run (a closed tab), which writes what it did", async () => {
    const abort = new AbortController();
    const res = await post({ ...base, steps: 1000 }, abort.signal);
    const seen = await readEvents(res, (e) => e.event === "step" && (e.data.step as number) >= 3);
    const id = seen[0].data.id as string;
    abort.abort();
    await waitForStatus(id, "stopped");
    const record = JSON.parse(readFileSync(join(out, id, "run.json"), "utf8"));
    expect(record.complete).toBe(false);
    expect(record.serve.stopped).toBe("closed");
    expect(record.totals.nfe).toBeLessThan(1500);
  });
});

describe("framecost serve: the command", () => {
  const cli = (args: string[]) =>
    spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "serve", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  const finish = (p: ReturnType<typeof cli>) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      let stdout = "";
      let stderr = "";
      p.stdout!.on("data", (c) => {
        stdout += c;
      });
      p.stderr!.on("data", (c) => {
        stderr += c;
      });
      p.on("close", (code) => done({ code, stdout, stderr }));
    });

  it("a bad flag exits 2 with one line", async () => {
    const r = await finish(cli(["--port", "abc"]));
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe('framecost: --port must be an integer between 0 and 65535, got "abc"');
  });

  it("a --host that does not resolve exits 2 with one line saying how to fix it", async () => {
    const r = await finish(cli(["--port", "0", "--models", models, "--host", "no.such.host.invalid"]));
    expect(r.code).toBe(2);
    // ENOTFOUND where a resolver answers, EAI_AGAIN where none can be reached
    expect(r.stderr.trim()).toMatch(
      /^framecost: --host no\.such\.host\.invalid is not an address of this machine \((ENOTFOUND|EAI_AGAIN)\); pass an IP address such as 127\.0\.0\.1 or a name that resolves here$/,
    );
  });

  it("prints where it listens (127.0.0.1 unless told), serves the page, and Ctrl-C stops it with exit 0", async () => {
    const p = cli(["--port", "0", "--models", models, "--out", join(root, "cli-out"), "--backend", "onnx"]);
    const result = finish(p);
    const url = await new Promise<string>((done, fail) => {
      let text = "";
      p.stdout!.on("data", (c) => {
        text += c;
        const m = /^framecost serve: (http:\/\/\S+)$/m.exec(text);
        if (m) done(m[1]);
      });
      p.on("close", () => fail(new Error(`serve exited before printing its address: ${text}`)));
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await page.text()).toContain("<title>framecost serve</title>");
    p.kill("SIGINT");
    const r = await result;
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`models  ${TEACHER}, ${STUDENT}`);
  });
});

// 6 x 114,871,552 (the network, counted) + 110,592 (ddim's arithmetic on 3072 values)
const PINNED_FLOPS = 689_339_904;
