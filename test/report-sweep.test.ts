import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildSweepRecord,
  describeFit,
  fitCells,
  fitLine,
  loadCellRecord,
  paretoFront,
  parseCsv,
  parseSweepCsv,
  parseSweepRecord,
  priceKeys,
  qualityKeys,
  readSweepFile,
  type SweepCell,
  type SweepRecord,
  sweepParetoFront,
  sweepToCsv,
  writeSweepFiles,
} from "../src/report/sweep.ts";
import { syntheticRunRecord, syntheticSweep } from "./fixtures/report-fixtures.ts";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "framecost-report-sweep-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("fitLine", () => {
  it("recovers a and b exactly (to rounding) and gives R² = 1 on exact lines", () => {
    fc.assert(
      fc.property(
        fc.double({ min: -1e3, max: 1e4, noNaN: true }),
        fc.double({ min: -1e3, max: 1e3, noNaN: true }),
        fc.uniqueArray(fc.integer({ min: 1, max: 200 }), { minLength: 2, maxLength: 12 }),
        (a, b, xs) => {
          const ys = xs.map((x) => a + b * x);
          const f = fitLine(xs, ys);
          expect(f.ok).toBe(true);
          if (!f.ok) return;
          const scale = Math.max(1, Math.abs(a), Math.abs(b) * 200);
          expect(Math.abs(f.a - a)).toBeLessThanOrEqual(1e-9 * scale);
          expect(Math.abs(f.b - b)).toBeLessThanOrEqual(1e-9 * scale);
          expect(f.r2).toBe(1);
          expect(f.n).toBe(xs.length);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("gives the textbook R² on a noisy example", () => {
    // y = 1 + 0.5x fits (1,1),(2,3),(3,2): residuals -0.5, 1, -0.5; SSres 1.5, SStot 2
    expect(fitLine([1, 2, 3], [1, 3, 2])).toEqual({ ok: true, n: 3, a: 1, b: 0.5, r2: 0.25 });
  });

  it("R² stays in [0, 1] for any data with two distinct x", () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 50 }), fc.double({ min: 0, max: 1e4, noNaN: true })), {
          minLength: 2,
          maxLength: 20,
        }),
        (pts) => {
          fc.pre(new Set(pts.map((p) => p[0])).size >= 2);
          const f = fitLine(
            pts.map((p) => p[0]),
            pts.map((p) => p[1]),
          );
          expect(f.ok).toBe(true);
          if (f.ok) {
            expect(f.r2).toBeGreaterThanOrEqual(-1e-12);
            expect(f.r2).toBeLessThanOrEqual(1);
          }
        },
      ),
    );
  });

  it("refuses to fit one point or one NFE value, saying why", () => {
    expect(fitLine([4], [10])).toEqual({ ok: false, n: 1, reason: "needs at least 2 cells, has 1" });
    expect(fitLine([4, 4, 4], [10, 11, 12])).toEqual({
      ok: false,
      n: 3,
      reason: "needs at least 2 distinct NFE values, has only 4",
    });
  });
});

describe("sampler fits in a sweep", () => {
  it("recovers each sampler's line from wobble-free fixture cells", () => {
    const sweep = syntheticSweep({
      wobble: 0,
      lines: {
        ddim: { aMs: 40, bMsPerNfe: 12 },
        euler: { aMs: 25, bMsPerNfe: 9.5 },
        heun: { aMs: 60, bMsPerNfe: 12 },
        "dpmpp-2m": { aMs: 41, bMsPerNfe: 12.25 },
      },
    });
    const got = Object.fromEntries(
      sweep.fits.map((f) => [f.sampler, f.ok ? [f.aMs, f.bMsPerNfe, f.r2] : null]),
    );
    expect(got.ddim![0]).toBeCloseTo(40, 9);
    expect(got.ddim![1]).toBeCloseTo(12, 9);
    expect(got.euler![0]).toBeCloseTo(25, 9);
    expect(got.euler![1]).toBeCloseTo(9.5, 9);
    expect(got.heun![0]).toBeCloseTo(60, 9);
    expect(got["dpmpp-2m"]![1]).toBeCloseTo(12.25, 9);
    for (const v of Object.values(got)) expect(v![2]).toBe(1);
    // fixed share at each cell is a / (a + b NFE), and the steps explain the rest
    const ddim = sweep.fits.find((f) => f.sampler === "ddim")!;
    if (!ddim.ok) throw new Error("ddim fit missing");
    for (const c of ddim.cells) {
      expect(c.fixedShare).toBeCloseTo(40 / (40 + 12 * c.nfePerFrame), 12);
      expect(c.fixedShare! + c.stepsShare!).toBeCloseTo(1, 15);
    }
    expect(ddim.cells.map((c) => c.steps)).toEqual([1, 2, 4, 8, 16, 32, 50]);
    expect(describeFit(ddim)).toBe(
      "ddim: wall per frame = 40 ms + 12 ms × NFE (R² 1.0000, 7 cells); fixed share 76.9% at 1 NFE to 6.25% at 50 NFE",
    );
    expect(sweep.pooledFit?.ok).toBe(true);
  });

  it("pins the fit on the default fixture (3% deterministic wobble)", () => {
    const sweep = syntheticSweep();
    const ddim = sweep.fits[0];
    if (!ddim.ok) throw new Error("ddim fit missing");
    expect(ddim.aMs).toBeCloseTo(42.65497, 4);
    expect(ddim.bMsPerNfe).toBeCloseTo(11.60006, 4);
    expect(ddim.r2).toBeCloseTo(0.99957, 5);
    expect(ddim.cells[0].fixedShare).toBeCloseTo(0.786194, 5);
    expect(ddim.cells[6].stepsShare).toBeCloseTo(0.931495, 5);
  });

  it("fixedShare + stepsShare = 1 and fixedShare = a/(a + b NFE) at every cell (property)", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 100 }), { minLength: 2, maxLength: 8 }),
        fc.double({ min: 1, max: 500, noNaN: true }),
        fc.double({ min: 0.01, max: 50, noNaN: true }),
        (nfes, a, b) => {
          const cells = nfes.map((n) => cell("euler", n, a + b * n));
          const f = fitCells("euler", cells);
          if (!f.ok) throw new Error(f.reason);
          for (const c of f.cells) {
            expect(c.fixedShare! + c.stepsShare!).toBeCloseTo(1, 12);
            expect(c.fixedShare).toBeCloseTo(a / (a + b * c.nfePerFrame), 6);
          }
        },
      ),
    );
  });

  it("reports samplers it cannot fit instead of dropping them", () => {
    const sweep = buildSweepRecord({
      grid: { steps: [4], samplers: ["ddim", "heun"] },
      cells: [cell("ddim", 4, 90), cell("heun", 4, 150, 7)],
      createdAt: "2025-01-01T00:00:00.000Z",
    });
    expect(sweep.fits).toEqual([
      { ok: false, sampler: "ddim", n: 1, reason: "needs at least 2 cells, has 1" },
      { ok: false, sampler: "heun", n: 1, reason: "needs at least 2 cells, has 1" },
    ]);
    expect(describeFit(sweep.fits[0])).toBe("ddim: no fit (needs at least 2 cells, has 1)");
  });

  it("rejects cells outside the grid and duplicate cells with one clear line", () => {
    const grid = { steps: [4], samplers: ["ddim"] };
    expect(() => buildSweepRecord({ grid, cells: [cell("euler", 4, 9)] })).toThrow(
      'sweep cell sampler "euler" is not in the grid (ddim)',
    );
    expect(() => buildSweepRecord({ grid, cells: [cell("ddim", 4, 9), cell("ddim", 4, 10)] })).toThrow(
      "sweep has two cells for sampler ddim at 4 steps",
    );
  });
});

describe("Pareto front", () => {
  const dominates = (p: [number, number], q: [number, number]) =>
    p[0] <= q[0] && p[1] <= q[1] && (p[0] < q[0] || p[1] < q[1]);

  it("keeps exactly the non-dominated points, in increasing cost (property)", () => {
    fc.assert(
      fc.property(
        // a small integer grid forces ties and duplicates
        fc.array(fc.tuple(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0, max: 8 })), { maxLength: 40 }),
        (pts) => {
          const front = paretoFront(
            pts,
            (p) => p[0],
            (p) => p[1],
          );
          const onFront = new Set(front);
          for (const p of pts) {
            const dominated = pts.some((q) => dominates(q, p));
            expect(onFront.has(p)).toBe(!dominated);
          }
          expect(front.length).toBe(pts.filter((p) => !pts.some((q) => dominates(q, p))).length);
          for (let i = 1; i < front.length; i++) {
            expect(front[i][0]).toBeGreaterThanOrEqual(front[i - 1][0]);
            expect(front[i][1]).toBeLessThanOrEqual(front[i - 1][1]);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it("ignores points with a missing cost or quality", () => {
    const pts: Array<[number, number]> = [
      [1, Number.NaN],
      [2, 5],
      [Number.POSITIVE_INFINITY, 0],
      [3, 4],
    ];
    expect(
      paretoFront(
        pts,
        (p) => p[0],
        (p) => p[1],
      ),
    ).toEqual([
      [2, 5],
      [3, 4],
    ]);
  });

  it("picks the cheap-enough, good-enough cells of the fixture sweep", () => {
    const sweep = syntheticSweep();
    const front = sweepParetoFront(sweep.cells, "swdPatches", "h100-sxm");
    // cheapest first; every further step buys strictly better quality
    expect(front.map((c) => `${c.sampler}/${c.steps}`)).toEqual([
      "ddim/1",
      "ddim/2",
      "dpmpp-2m/2",
      "ddim/4",
      "heun/2",
      "dpmpp-2m/4",
      "heun/4",
      "dpmpp-2m/8",
      "heun/8",
      "dpmpp-2m/16",
      "heun/16",
      "dpmpp-2m/32",
      "dpmpp-2m/50",
      "heun/32",
      "heun/50",
    ]);
    const usd = front.map((c) => c.usdPerVideoMinute.byGpu["h100-sxm"]);
    expect([...usd].sort((p, q) => p - q)).toEqual(usd);
  });
});

describe("sweep.csv", () => {
  it("round-trips every cell of the fixture sweep", () => {
    const sweep = syntheticSweep();
    const rows = parseSweepCsv(sweepToCsv(sweep));
    expect(rows.length).toBe(sweep.cells.length);
    rows.forEach((row, i) => {
      const c = sweep.cells[i];
      expect(row).toMatchObject({
        sampler: c.sampler,
        steps: c.steps,
        nfePerFrame: c.nfePerFrame,
        wallMsPerFrame: c.wallMsPerFrame,
        quality: c.quality,
        usdPerVideoMinute: c.usdPerVideoMinute,
        record: c.record,
      });
    });
    const header = sweepToCsv(sweep).split("\n")[0];
    expect(header).toBe(
      "sampler,steps,nfePerFrame,wallMsPerFrame,fittedWallMsPerFrame,fixedShare,stepsShare," +
        "quality.swdPixels,quality.swdPatches,quality.paletteError," +
        "usdPerVideoMinute.local,usdPerVideoMinute.h100-sxm,usdPerVideoMinute.rtx-4090,record",
    );
  });

  it("round-trips arbitrary sampler names, paths and numbers (property)", () => {
    const num = fc.double({ min: 0, max: 1e12, noNaN: true, noDefaultInfinity: true });
    const arbCell = fc.record({
      sampler: fc.string({ minLength: 1, maxLength: 12 }),
      steps: fc.integer({ min: 1, max: 1000 }),
      nfePerFrame: fc.double({ min: 0.5, max: 1e4, noNaN: true }),
      wallMsPerFrame: num,
      quality: fc.option(fc.record({ swdPixels: num, swdPatches: num, paletteError: num }), { nil: null }),
      local: fc.option(num, { nil: null }),
      h100: num,
      record: fc.string({ minLength: 1, maxLength: 20 }),
    });
    fc.assert(
      fc.property(fc.array(arbCell, { minLength: 1, maxLength: 6 }), (specs) => {
        // unique (sampler, steps) per grid
        const cells: SweepCell[] = specs.map((s, i) => ({
          sampler: s.sampler,
          steps: s.steps + i * 1000,
          nfePerFrame: s.nfePerFrame,
          wallMsPerFrame: s.wallMsPerFrame,
          quality: s.quality,
          usdPerVideoMinute: { local: s.local, byGpu: { "h100-sxm": s.h100 } },
          record: s.record,
        }));
        const samplers = [...new Set(cells.map((c) => c.sampler))];
        const sweep = buildSweepRecord({ grid: { steps: [1], samplers }, cells });
        const rows = parseSweepCsv(sweepToCsv(sweep));
        expect(
          rows.map(({ sampler, steps, nfePerFrame, wallMsPerFrame, quality, usdPerVideoMinute, record }) => ({
            sampler,
            steps,
            nfePerFrame,
            wallMsPerFrame,
            quality,
            usdPerVideoMinute,
            record,
          })),
        ).toEqual(sweep.cells);
      }),
      { numRuns: 200 },
    );
  });

  it("parses quoted fields with commas, quotes and newlines", () => {
    expect(parseCsv('a,"b,c","d ""e""","f\ng"\r\n1,,3,\n')).toEqual([
      ["a", "b,c", 'd "e"', "f\ng"],
      ["1", "", "3", ""],
    ]);
  });

  it("says which row and column is bad", () => {
    const csv = sweepToCsv(syntheticSweep({ samplers: ["ddim"], steps: [1, 2] })).replace(
      /\nddim,2,/,
      "\nddim,two,",
    );
    expect(() => parseSweepCsv(csv, "x/sweep.csv")).toThrow(
      'x/sweep.csv: row 3, column steps: "two" is not a number',
    );
    expect(() => parseSweepCsv("sampler,steps\n", "y.csv")).toThrow(
      'y.csv: missing column "nfePerFrame"; was it written by framecost?',
    );
  });
});

describe("sweep.json", () => {
  it("writes sweep.json and sweep.csv without leaving temporary files, and reads them back", async () => {
    const out = join(dir, "write");
    await mkdir(out);
    const sweep = syntheticSweep({ inlineRecords: true, samplers: ["ddim", "heun"], steps: [1, 4] });
    const paths = await writeSweepFiles(out, sweep);
    expect((await readdir(out)).sort()).toEqual(["sweep.csv", "sweep.json"]);
    const back = await readSweepFile(paths.json);
    expect(back).toEqual(sweep);
    expect(await readFile(paths.csv, "utf8")).toBe(sweepToCsv(sweep));
    expect(priceKeys(back.cells)).toEqual(["local", "h100-sxm", "rtx-4090"]);
    expect(qualityKeys(back.cells)).toEqual(["swdPixels", "swdPatches", "paletteError"]);
  });

  it("loads a cell's record from a path relative to sweep.json", async () => {
    const out = join(dir, "rel");
    await mkdir(join(out, "runs"), { recursive: true });
    const rec = syntheticRunRecord({ sampler: "ddim", steps: 4 });
    await writeFile(join(out, "runs", "ddim-4.json"), JSON.stringify(rec));
    const sweep = syntheticSweep({ samplers: ["ddim"], steps: [4, 8] });
    expect(await loadCellRecord(join(out, "sweep.json"), sweep.cells[0])).toEqual(rec);
    await expect(loadCellRecord(join(out, "sweep.json"), sweep.cells[1])).rejects.toThrow(
      `${join(out, "runs", "ddim-8.json")}: cannot read (no such file)`,
    );
  });

  it("names the file and the first problem for a bad sweep record", () => {
    const bad = JSON.parse(JSON.stringify(syntheticSweep())) as SweepRecord;
    (bad.cells[3] as unknown as { steps: string }).steps = "four";
    expect(() => parseSweepRecord(bad, "s.json")).toThrow(
      's.json: field cells[3].steps is invalid (Invalid input: expected number, received string; value seen: "four"); ' +
        "this is not a sweep record that framecost wrote: rerun `framecost sweep`",
    );
    expect(() => parseSweepRecord({ ...bad, schemaVersion: 2 }, "s.json")).toThrow(
      /^s\.json: field schemaVersion is invalid \(Invalid input: expected 1; value seen: 2\)/,
    );
  });
});

function cell(sampler: string, nfe: number, wallMsPerFrame: number, steps = nfe): SweepCell {
  return {
    sampler,
    steps,
    nfePerFrame: nfe,
    wallMsPerFrame,
    quality: null,
    usdPerVideoMinute: { local: null, byGpu: {} },
    record: `runs/${sampler}-${steps}.json`,
  };
}
