import { afterAll, describe, expect, it } from "vitest";
import {
  activeBackendName,
  type BackendDescriptor,
  defaultBackends,
  initBackend,
  type ModuleLoader,
} from "../src/engine/backend.ts";
import { describeMachine } from "../src/engine/machine.ts";
import { tf } from "../src/engine/tf.ts";
import { RuntimeFailure, UserError } from "../src/util/errors.ts";

/** What Node throws for a package that is not installed. */
function notFound(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}' imported from /x/backend.ts`), {
    code: "ERR_MODULE_NOT_FOUND",
  });
}

const missing: ModuleLoader = async (specifier) => {
  throw notFound(specifier);
};

const TFJS_NODE_HOW =
  "npm install @tensorflow/tfjs-node (needs network access to download libtensorflow; @tensorflow/tfjs-node-gpu for CUDA)";

function withActivate(backends: BackendDescriptor[], name: string, activate: () => Promise<void>) {
  return backends.map((b) => (b.name === name ? { ...b, activate } : b));
}

afterAll(async () => {
  if (tf.engine().findBackendFactory("tensorflow") != null) tf.removeBackend("tensorflow");
  await tf.setBackend("wasm");
});

describe("initBackend auto choice", () => {
  it("takes wasm when tfjs-node is not installed, and says what it skipped", async () => {
    const choice = await initBackend(undefined, { backends: defaultBackends(missing) });
    expect(choice).toEqual({
      name: "wasm",
      reason:
        "auto: first available of tensorflow > wasm > cpu (@tensorflow/tfjs-backend-wasm is bundled); " +
        "skipped tensorflow: @tensorflow/tfjs-node-gpu is not installed; @tensorflow/tfjs-node is not installed",
    });
    expect(tf.getBackend()).toBe("wasm");
    expect(activeBackendName()).toBe("wasm");
  });

  it("falls back to cpu when wasm does not start", async () => {
    const backends = withActivate(defaultBackends(missing), "wasm", async () => {
      throw new RuntimeFailure("the wasm backend did not start: simulated");
    });
    const choice = await initBackend(undefined, { backends });
    expect(choice.name).toBe("cpu");
    expect(choice.reason).toBe(
      "auto: first available of tensorflow > wasm > cpu (@tensorflow/tfjs-backend-cpu is bundled); " +
        "skipped tensorflow: @tensorflow/tfjs-node-gpu is not installed; @tensorflow/tfjs-node is not installed; " +
        "wasm: the wasm backend did not start: simulated",
    );
    expect(tf.getBackend()).toBe("cpu");
  });

  it("reports a tfjs-node that is installed but broken with its load error", async () => {
    const broken: ModuleLoader = async (specifier) => {
      if (specifier === "@tensorflow/tfjs-node") {
        throw new Error("libtensorflow.so.2: cannot open shared object file\n    at Module._extensions");
      }
      throw notFound(specifier);
    };
    const [tensorflow] = defaultBackends(broken);
    expect(await tensorflow.probe()).toEqual({
      available: false,
      reason:
        "@tensorflow/tfjs-node-gpu is not installed; " +
        "@tensorflow/tfjs-node failed to load: libtensorflow.so.2: cannot open shared object file",
    });
  });

  it("says so when tfjs-node loads but registers with another tfjs-core copy", async () => {
    const [tensorflow] = defaultBackends(async (s) => (s === "@tensorflow/tfjs-node" ? {} : missing(s)));
    const probe = await tensorflow.probe();
    expect(probe.available).toBe(false);
    expect(probe.reason).toContain(
      `@tensorflow/tfjs-node loaded but did not register with this @tensorflow/tfjs (${tf.version_core})`,
    );
  });

  it("takes tensorflow first when tfjs-node loads (simulated by registering a backend under that name)", async () => {
    const loads: string[] = [];
    const fakeTfjsNode: ModuleLoader = async (specifier) => {
      loads.push(specifier);
      if (specifier !== "@tensorflow/tfjs-node") throw notFound(specifier);
      // What importing tfjs-node does: register a backend named "tensorflow".
      tf.registerBackend("tensorflow", tf.engine().findBackendFactory("cpu"), 0);
      return {};
    };
    const choice = await initBackend(undefined, { backends: defaultBackends(fakeTfjsNode) });
    expect(choice).toEqual({
      name: "tensorflow",
      reason: "auto: first available of tensorflow > wasm > cpu (@tensorflow/tfjs-node loaded)",
    });
    expect(tf.getBackend()).toBe("tensorflow");
    expect(loads).toEqual(["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node"]);
    tf.removeBackend("tensorflow");
    await tf.setBackend("wasm");
  });

  it("fails with every reason when no backend starts", async () => {
    const fail = (name: string) => async () => {
      throw new RuntimeFailure(`the ${name} backend did not start`);
    };
    let backends = withActivate(defaultBackends(missing), "wasm", fail("wasm"));
    backends = withActivate(backends, "cpu", fail("cpu"));
    await expect(initBackend(undefined, { backends })).rejects.toThrow(
      new RuntimeFailure(
        "no tensor backend could start: tensorflow: @tensorflow/tfjs-node-gpu is not installed; " +
          "@tensorflow/tfjs-node is not installed; wasm: the wasm backend did not start; cpu: the cpu backend did not start",
      ),
    );
  });
});

describe("initBackend with --backend", () => {
  it("forces an available backend and records that it was forced", async () => {
    const choice = await initBackend("cpu", { backends: defaultBackends(missing) });
    expect(choice).toEqual({
      name: "cpu",
      reason: "forced by --backend cpu (@tensorflow/tfjs-backend-cpu is bundled)",
    });
    expect(tf.getBackend()).toBe("cpu");
    await initBackend("wasm", { backends: defaultBackends(missing) });
    expect(tf.getBackend()).toBe("wasm");
  });

  it("refuses tensorflow when tfjs-node is missing, saying why and how to get it", async () => {
    const err = await initBackend("tensorflow", { backends: defaultBackends(missing) }).catch((e) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(err.message).toBe(
      "--backend tensorflow is not available: @tensorflow/tfjs-node-gpu is not installed; " +
        `@tensorflow/tfjs-node is not installed; to get it: ${TFJS_NODE_HOW}, ` +
        "or leave out --backend to choose automatically",
    );
    expect(tf.getBackend()).toBe("wasm"); // unchanged
  });

  it("refuses an unknown name with the list of names", async () => {
    await expect(initBackend("gpu", { backends: defaultBackends(missing) })).rejects.toThrow(
      new UserError(
        '--backend must be one of tensorflow, wasm, cpu, got "gpu"; leave it out to choose automatically',
      ),
    );
  });

  it("a forced backend that probes available but does not start is a runtime failure", async () => {
    const backends = withActivate(defaultBackends(missing), "wasm", async () => {
      throw new RuntimeFailure("the wasm backend did not start: simulated");
    });
    const err = await initBackend("wasm", { backends }).catch((e) => e);
    expect(err).toBeInstanceOf(RuntimeFailure);
    expect(err.message).toBe("the wasm backend did not start: simulated");
  });
});

describe("describeMachine", () => {
  it("lists every backend, says why one is missing, and restores the active backend", async () => {
    await tf.setBackend("wasm");
    const m = await describeMachine({ calibrate: false, backends: defaultBackends(missing) });
    expect(m.node).toBe(process.version);
    expect(m.cpu.cores).toBeGreaterThanOrEqual(1);
    expect(m.cpu.model.length).toBeGreaterThan(0);
    expect(m.backends.map((b) => [b.name, b.available])).toEqual([
      ["tensorflow", false],
      ["wasm", true],
      ["cpu", true],
    ]);
    expect(m.backends[0].howToGet).toBe(TFJS_NODE_HOW);
    expect(m.backends[1].gemmGflops).toBeUndefined();
    expect(m.autoBackend).toBe("wasm");
    expect(tf.getBackend()).toBe("wasm");
  });

  it("calibrates each available backend when asked", async () => {
    const small = defaultBackends(missing).map((b) => ({ ...b, gemmSize: 64 }));
    const m = await describeMachine({ runs: 2, backends: small });
    for (const b of m.backends.filter((x) => x.available)) {
      expect(Number.isFinite(b.gemmGflops)).toBe(true);
      expect(b.gemmGflops).toBeGreaterThan(0);
      expect(b.gemm).toMatchObject({ size: 64, runs: 2, flopsPerRun: 2 * 64 ** 3 });
    }
  });
});
