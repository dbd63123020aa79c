/**
 * Prints the calibrated fp32 GEMM throughput of every available backend, with
 * the median and warm-up times it came from. Run: npx tsx bench/calibrate.ts
 */
import { defaultBackends } from "../src/engine/backend.ts";
import { calibrateGemm } from "../src/engine/calibrate.ts";

for (const backend of defaultBackends()) {
  const probe = await backend.probe();
  if (!probe.available) {
    console.log(`${backend.name.padEnd(10)} not available: ${probe.reason}`);
    continue;
  }
  const t0 = performance.now();
  const c = await calibrateGemm({ backend: backend.name });
  const totalMs = performance.now() - t0;
  console.log(
    `${c.backend.padEnd(10)} ${c.gflops.toFixed(2).padStart(7)} GFLOP/s  ` +
      `(${c.size}x${c.size} matMul, median of ${c.runs}: ${c.medianMs.toFixed(2)} ms, ` +
      `warm-up ${c.warmupMs.toFixed(1)} ms, calibration took ${totalMs.toFixed(0)} ms)`,
  );
}
