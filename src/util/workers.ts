import { Worker } from "node:worker_threads";

/**
 * Start a worker thread running a TypeScript module. The module reads its
 * own data from `workerData.data`.
 */
export function startTsWorker(entry: URL, data: unknown): Worker {
  return new Worker(new URL("./worker-boot.mjs", import.meta.url), {
    workerData: { entry: entry.href, data },
    // start clean: a parent run under a test runner or loader must not pass its flags on
    execArgv: [],
  });
}
