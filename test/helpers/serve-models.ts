/**
 * A models folder for the serve tests: the shipped teacher (a link to
 * models/tiny), a "student" (the teacher's weights with the sampling a
 * distilled student's model.json names, no guide) and things that must not
 * be offered (a folder without model.json, a file). The tests then need no
 * student from the working tree.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export function makeModelsFolder(dir: string): { teacher: string; student: string } {
  mkdirSync(dir, { recursive: true });
  const teacher = `${dir}/tiny`;
  const student = `${dir}/tiny-2step`;
  symlinkSync(resolve("models/tiny"), teacher);
  mkdirSync(student);
  const manifest = JSON.parse(readFileSync("models/tiny/model.json", "utf8"));
  delete manifest.guidance;
  writeFileSync(
    join(student, "model.json"),
    JSON.stringify({ ...manifest, sampling: { sampler: "ddim", steps: 2 } }),
  );
  symlinkSync(resolve("models/tiny/weights.bin"), join(student, "weights.bin"));
  mkdirSync(join(dir, "not-a-model"));
  writeFileSync(join(dir, "notes.txt"), "not a folder");
  return { teacher, student };
}
