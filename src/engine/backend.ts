/**
 * Which tensor backend runs the program, and why.
 *
 * Each backend is a descriptor with `probe()` (can it run here? if not, why)
 * and `activate()` (make it the engine's backend). Auto choice walks the list
 * in order and takes the first that probes available and activates:
 * `tensorflow` (native, from the optional @tensorflow/tfjs-node or -gpu),
 * `wasm` (embedded default), `cpu` (pure JS, always there). A later engine
 * (e.g. `onnx`) is added as one more descriptor in `defaultBackends()`.
 *
 * Optional packages are loaded through an injectable `ModuleLoader`, so tests
 * can simulate a package that is not installed or fails to load.
 */
import { RuntimeFailure, UserError } from "../util/errors.ts";
import { tf } from "./tf.ts";

/** Loads an optional package by specifier; rejects when it is absent or broken. */
export type ModuleLoader = (specifier: string) => Promise<unknown>;

export interface BackendProbe {
  available: boolean;
  /** why it is available (which package, which version) or why not */
  reason: string;
}

export interface BackendDescriptor {
  name: string;
  /** one line for help text and doctor */
  summary: string;
  /** what to do to get it when it is not available */
  howToGet: string;
  /** square fp32 GEMM side used to calibrate it (small for slow backends) */
  gemmSize: number;
  probe(): Promise<BackendProbe>;
  /** makes it the active backend; throws RuntimeFailure when it cannot start */
  activate(): Promise<void>;
}

export interface BackendChoice {
  name: string;
  /** why this backend runs: forced by --backend, or the auto choice and what was skipped */
  reason: string;
}

export const defaultLoader: ModuleLoader = (specifier) => import(specifier);

const TFJS_NODE_PACKAGES = ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"] as const;

/** Short message of a loader failure: "not installed" for a missing module, else the error's first line. */
function loadFailure(specifier: string, err: unknown): string {
  const code = (err as { code?: string } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  if (
    (code === "ERR_MODULE_NOT_FOUND" || code === "MODULE_NOT_FOUND") &&
    message.includes(specifier.split("/").slice(0, 2).join("/"))
  ) {
    return `${specifier} is not installed`;
  }
  return `${specifier} failed to load: ${message.split("\n")[0]}`;
}

/** Switches the tfjs engine to `name`; tf.setBackend resolves false (it does not throw) when init fails. */
async function setTfBackend(name: string): Promise<void> {
  let ok = false;
  let detail = "";
  try {
    ok = await tf.setBackend(name);
    await tf.ready();
  } catch (err) {
    detail = `: ${err instanceof Error ? err.message.split("\n")[0] : String(err)}`;
  }
  if (!ok || tf.getBackend() !== name) {
    throw new RuntimeFailure(`the ${name} backend did not start${detail}`);
  }
}

function tensorflowBackend(load: ModuleLoader): BackendDescriptor {
  // Memoised: importing tfjs-node registers the "tensorflow" backend once per process.
  let probed: Promise<BackendProbe> | undefined;
  return {
    name: "tensorflow",
    summary: "native TensorFlow kernels, multi-threaded (optional package @tensorflow/tfjs-node or -gpu)",
    howToGet:
      "npm install @tensorflow/tfjs-node (needs network access to download libtensorflow; " +
      "@tensorflow/tfjs-node-gpu for CUDA)",
    gemmSize: 1024,
    probe() {
      probed ??= (async () => {
        const failures: string[] = [];
        for (const pkg of TFJS_NODE_PACKAGES) {
          try {
            await load(pkg);
          } catch (err) {
            failures.push(loadFailure(pkg, err));
            continue;
          }
          // A second copy of tfjs-core (version mismatch) would register the backend elsewhere.
          if (tf.engine().findBackendFactory("tensorflow") == null) {
            failures.push(
              `${pkg} loaded but did not register with this @tensorflow/tfjs (${tf.version_core})`,
            );
            continue;
          }
          return { available: true, reason: `${pkg} loaded` };
        }
        return { available: false, reason: failures.join("; ") };
      })();
      return probed;
    },
    activate: () => setTfBackend("tensorflow"),
  };
}

function wasmBackend(): BackendDescriptor {
  return {
    name: "wasm",
    summary: "embedded WebAssembly kernels (XNNPACK), single-threaded in Node, installs everywhere",
    howToGet: "npm install @tensorflow/tfjs-backend-wasm (a regular dependency: reinstall with npm ci)",
    gemmSize: 512,
    async probe() {
      // Registered by the import in tf.ts; whether its .wasm binary starts shows in activate().
      if (tf.engine().findBackendFactory("wasm") == null) {
        return { available: false, reason: "@tensorflow/tfjs-backend-wasm is not registered" };
      }
      return { available: true, reason: "@tensorflow/tfjs-backend-wasm is bundled" };
    },
    activate: () => setTfBackend("wasm"),
  };
}

function cpuBackend(): BackendDescriptor {
  return {
    name: "cpu",
    summary: "pure JavaScript kernels: slow but complete (every kernel, every gradient)",
    howToGet: "npm install @tensorflow/tfjs (a regular dependency: reinstall with npm ci)",
    gemmSize: 256,
    async probe() {
      if (tf.engine().findBackendFactory("cpu") == null) {
        return { available: false, reason: "@tensorflow/tfjs-backend-cpu is not registered" };
      }
      return { available: true, reason: "@tensorflow/tfjs-backend-cpu is bundled" };
    },
    activate: () => setTfBackend("cpu"),
  };
}

/** The backends in auto-choice order, best first. */
export function defaultBackends(load: ModuleLoader = defaultLoader): BackendDescriptor[] {
  return [tensorflowBackend(load), wasmBackend(), cpuBackend()];
}

export interface InitBackendOptions {
  /** descriptors to choose from, best first (tests inject fakes) */
  backends?: BackendDescriptor[];
}

/**
 * Starts a backend: the one named by `requested` (from --backend), or the
 * first in order that is available and starts. Returns its name and the
 * reason, which run records keep.
 */
export async function initBackend(
  requested?: string,
  { backends = defaultBackends() }: InitBackendOptions = {},
): Promise<BackendChoice> {
  // PROD only silences tfjs's console notes (e.g. "install tfjs-node"), which would break one-line output.
  tf.env().set("PROD", true);
  const names = backends.map((b) => b.name);

  if (requested !== undefined) {
    const backend = backends.find((b) => b.name === requested);
    if (!backend) {
      throw new UserError(
        `--backend must be one of ${names.join(", ")}, got "${requested}"; leave it out to choose automatically`,
      );
    }
    const probe = await backend.probe();
    if (!probe.available) {
      throw new UserError(
        `--backend ${requested} is not available: ${probe.reason}; to get it: ${backend.howToGet}, ` +
          `or leave out --backend to choose automatically`,
      );
    }
    await backend.activate();
    return { name: backend.name, reason: `forced by --backend ${requested} (${probe.reason})` };
  }

  const skipped: string[] = [];
  for (const backend of backends) {
    const probe = await backend.probe();
    if (!probe.available) {
      skipped.push(`${backend.name}: ${probe.reason}`);
      continue;
    }
    try {
      await backend.activate();
    } catch (err) {
      skipped.push(`${backend.name}: ${err instanceof Error ? err.message : String(err)}`);
      continue;
    }
    const why = skipped.length > 0 ? `; skipped ${skipped.join("; ")}` : "";
    return {
      name: backend.name,
      reason: `auto: first available of ${names.join(" > ")} (${probe.reason})${why}`,
    };
  }
  throw new RuntimeFailure(`no tensor backend could start: ${skipped.join("; ")}`);
}

/** Name of the active tfjs backend, or null before any was started. */
export function activeBackendName(): string | null {
  // engine().backendName is unset until a backend is chosen; tf.getBackend() would start one.
  return (tf.engine() as unknown as { backendName?: string }).backendName ?? null;
}
