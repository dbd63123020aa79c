/**
 * The model folders `serve` may load: the folders directly under the models
 * folder that hold a model.json (the teacher, models/tiny, and the few-step
 * students `framecost distill` writes beside it). A request names one of
 * them by the exact string listed here; nothing else is ever read.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

/** What the page shows of a model folder. */
export interface ModelEntry {
  /** the folder as a request names it, e.g. "models/tiny-4step" */
  dir: string;
  /** a distilled student (model.json names the sampler and steps it was distilled for) or a teacher */
  role: "teacher" | "student";
  /** the folder's own sampler and steps (a student's); absent = generate's defaults */
  sampling?: { sampler: string; steps: number };
  /** the autoguidance weight the folder uses by default; absent = no guide */
  guidance?: { weight: number; fromT: number };
  /** one line for the page */
  label: string;
}

// loose: model.json holds much more (params, training); only these fields matter here
const Manifest = z.looseObject({
  config: z.looseObject({ name: z.string() }),
  sampling: z.object({ sampler: z.string(), steps: z.int().min(1) }).optional(),
  guidance: z.looseObject({ weight: z.number(), fromT: z.int() }).optional(),
});

/** "models" + "tiny" -> "models/tiny" (forward slashes on every platform: it is a name as much as a path). */
function folderName(root: string, name: string): string {
  return `${root.replace(/[\\/]+$/, "")}/${name}`;
}

/** The allowed model folders, teacher first, then students from most steps to fewest. */
export function listModels(root: string): ModelEntry[] {
  if (!existsSync(root)) return [];
  const out: ModelEntry[] = [];
  for (const name of readdirSync(root)) {
    // a folder, or a link to one the user put there
    if (name.startsWith(".") || !statSync(join(root, name)).isDirectory()) continue;
    const file = join(root, name, "model.json");
    if (!existsSync(file)) continue;
    let parsed: z.infer<typeof Manifest>;
    try {
      parsed = Manifest.parse(JSON.parse(readFileSync(file, "utf8")));
    } catch {
      continue; // not a model folder this framecost reads: not offered
    }
    const dir = folderName(root, name);
    const sampling = parsed.sampling;
    const guidance = parsed.guidance && parsed.guidance.weight > 0 ? parsed.guidance : undefined;
    const role = sampling ? "student" : "teacher";
    const what = sampling
      ? `student: ${sampling.sampler} ${sampling.steps} step${sampling.steps === 1 ? "" : "s"}`
      : "teacher";
    const guided = guidance ? `, guided (weight ${guidance.weight} at t >= ${guidance.fromT})` : "";
    out.push({
      dir,
      role,
      ...(sampling ? { sampling: { sampler: sampling.sampler, steps: sampling.steps } } : {}),
      ...(guidance ? { guidance: { weight: guidance.weight, fromT: guidance.fromT } } : {}),
      label: `${dir} (${parsed.config.name} ${what}${guided})`,
    });
  }
  const rank = (m: ModelEntry) => (m.sampling ? m.sampling.steps : Number.POSITIVE_INFINITY);
  return out.sort((a, b) => rank(b) - rank(a) || a.dir.localeCompare(b.dir));
}
