/**
 * `framecost serve`'s HTTP server (node:http, no framework): the page and its
 * script and style (files shipped in src/serve/page/, served from a fixed
 * table), a JSON API, and one server-sent-event stream per run.
 *
 *   GET  /                      the page (also /app.js, /style.css)
 *   GET  /api/options           model folders, samplers, catalog GPUs with prices
 *   GET  /api/runs              every run of this server, with results where finished
 *   POST /api/runs              JSON RunRequest -> 400 with one line, or a text/event-stream of the run
 *                               (events: queued, start, step, frame, done | stopped | failed);
 *                               closing the connection stops the run
 *   POST /api/runs/<id>/stop    stops the run within a step (it writes its record and ends its stream)
 *   GET  /runs/<id>/run.json    the run record (also /runs/<id>/frames/frame-000.png ...)
 *
 * Files are read only from the page table, the allowed model folders (by
 * exact name) and the runs' own output folders; a path with ".." is a 400.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { type Catalog, chosenPrice, DEFAULT_SUMMARY_GPUS, gpuIds } from "../cost/index.ts";
import { SAMPLERS, samplerNames } from "../diffusion/samplers/index.ts";
import { DEFAULT_SAMPLING } from "../run/generation.ts";
import { UserError } from "../util/errors.ts";
import { listModels } from "./models.ts";
import { LIMITS, parseRunRequest } from "./request.ts";
import { Runner, type RunnerOptions } from "./runs.ts";

export interface ServeOptions extends RunnerOptions {
  /** folder whose subfolders with a model.json may be loaded; default "models" */
  modelsDir: string;
  host: string;
  /** 0 = any free port */
  port: number;
}

export interface ServeHandle {
  /** http://host:port/ */
  url: string;
  runner: Runner;
  /** stops every run (the running one writes its record), then closes the server */
  close(): Promise<void>;
}

const PAGE: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
};

// the page loads nothing from elsewhere, and the browser holds it to that
const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'";

const MAX_BODY_BYTES = 16 * 1024;
const FLUSH_MS = 15;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store" });
  res.end(text);
}

/** The path's segments, decoded; a ".." (also as %2e%2e), a backslash or a NUL in one is refused. */
export function pathSegments(rawUrl: string): string[] {
  const path = rawUrl.split("?")[0];
  const segments = path.split("/").slice(1);
  const decoded = segments.map((s) => {
    try {
      return decodeURIComponent(s);
    } catch {
      throw new HttpError(400, `the path ${JSON.stringify(path)} is not valid percent-encoding`);
    }
  });
  if (decoded.some((s) => s === ".." || s.includes("/") || s.includes("\\") || s.includes("\0")))
    throw new HttpError(
      400,
      `a path with ".." (or an encoded "/", "\\" or NUL) is refused, got ${JSON.stringify(path)}`,
    );
  return decoded;
}

async function readJsonBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `the request body is over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError(400, `the request body must be JSON, got ${JSON.stringify(text.slice(0, 60))}`);
  }
}

/** What the page offers: the allowed model folders, the samplers, the catalog's GPUs and their prices. */
function options(o: ServeOptions, catalog: Catalog) {
  return {
    models: listModels(o.modelsDir),
    samplers: samplerNames().map((name) => ({ name, description: SAMPLERS[name].description })),
    gpus: catalog.gpus.map((g) => {
      const p = chosenPrice(g);
      return { id: g.id, name: g.name, usdPerHour: p?.usdPerHour ?? null, priceSource: p?.source ?? null };
    }),
    limits: LIMITS,
    fps: o.fps ?? 24,
    // generate's: its sampler and steps, and the first GPU its summary prices
    defaults: { ...DEFAULT_SAMPLING, seed: 0, frames: 1, gpu: DEFAULT_SUMMARY_GPUS[0] },
  };
}

export async function startServer(o: ServeOptions): Promise<ServeHandle> {
  const runner = new Runner(o);
  const page = new Map(
    Object.entries(PAGE).map(([route, p]) => [
      route,
      { body: readFileSync(new URL(`./page/${p.file}`, import.meta.url)), type: p.type },
    ]),
  );

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const segments = pathSegments(req.url ?? "/");
    const route = `/${segments.join("/")}`;
    const method = req.method ?? "GET";
    const asset = page.get(route);
    if (asset) {
      if (method !== "GET" && method !== "HEAD") throw new HttpError(405, `${method} ${route}: use GET`);
      res.writeHead(200, {
        "Content-Type": asset.type,
        "Content-Security-Policy": CSP,
        "Cache-Control": "no-cache",
      });
      res.end(method === "HEAD" ? undefined : asset.body);
      return;
    }
    if (route === "/api/options" && method === "GET") return sendJson(res, 200, options(o, o.catalog));
    if (route === "/api/runs" && method === "GET") return sendJson(res, 200, { runs: runner.list() });
    if (route === "/api/runs" && method === "POST") return startRun(req, res);
    if (segments[0] === "api" && segments[1] === "runs" && segments[3] === "stop" && segments.length === 4) {
      if (method !== "POST") throw new HttpError(405, `${method} ${route}: use POST`);
      if (!runner.stop(segments[2], "stop"))
        throw new HttpError(404, `no queued or running run ${segments[2]}`);
      return sendJson(res, 200, { id: segments[2], stopping: true });
    }
    if (segments[0] === "runs" && method === "GET") return serveRunFile(res, segments);
    throw new HttpError(404, `nothing at ${method} ${route}`);
  };

  const startRun = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readJsonBody(req);
    let request: ReturnType<typeof parseRunRequest>;
    try {
      request = parseRunRequest(body, listModels(o.modelsDir), gpuIds(o.catalog));
    } catch (err) {
      if (err instanceof UserError) throw new HttpError(400, err.message);
      throw err;
    }
    res.writeHead(200, {
      "Content-Type": "text/event-stream; charset=utf-8",
      "Cache-Control": "no-store",
      Connection: "keep-alive",
    });
    res.flushHeaders();
    let open = true;
    // events written together at most every FLUSH_MS: a browser wakes per chunk it reads (~2.5 ms of its
    // CPU each here), and a step can take 2 ms
    let pending = "";
    let timer: NodeJS.Timeout | undefined;
    const flush = () => {
      timer = undefined;
      if (open && pending) res.write(pending);
      pending = "";
    };
    const id = runner.submit(request, {
      send: (event, data) => {
        if (!open) return;
        pending += `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
        timer ??= setTimeout(flush, FLUSH_MS);
      },
      end: () => {
        clearTimeout(timer);
        flush();
        if (open) res.end();
        open = false;
      },
    });
    // the tab closed (or the page aborted its request): stop its run
    res.on("close", () => {
      if (open) {
        open = false;
        clearTimeout(timer);
        runner.stop(id, "closed");
      }
    });
  };

  const serveRunFile = async (res: ServerResponse, segments: string[]): Promise<void> => {
    const [, id, ...rest] = segments;
    const folder = runner.folderOf(id ?? "");
    if (!folder) throw new HttpError(404, `no run ${JSON.stringify(id)} on this server`);
    const name = rest.join("/");
    const frame = /^frames\/frame-\d{3}\.png$/.test(name);
    if (name !== "run.json" && !frame)
      throw new HttpError(404, `a run serves run.json and frames/frame-NNN.png, not ${JSON.stringify(name)}`);
    let body: Buffer;
    try {
      body = await readFile(join(folder, ...rest));
    } catch {
      throw new HttpError(404, `${name} of run ${id} is not written (yet)`);
    }
    res.writeHead(200, {
      "Content-Type": frame ? "image/png" : "application/json; charset=utf-8",
      ...(frame ? {} : { "Content-Disposition": 'attachment; filename="run.json"' }),
      "Cache-Control": "no-store",
    });
    res.end(body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      const status = err instanceof HttpError ? err.status : 500;
      const message = err instanceof Error ? err.message : String(err);
      if (res.headersSent) res.end();
      else sendJson(res, status, { error: message });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(o.port, o.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${host}:${addr.port}/`,
    runner,
    close: async () => {
      await runner.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
