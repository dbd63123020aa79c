"""The framecost video DiT in PyTorch (CPU, fp32), for bench/peer-pytorch.ts.

Reads what the TypeScript side wrote into one folder: meta.json (config,
parameter layout, batch), weights.bin (the flat float32 weights), pos.bin
(position embedding [T, D]), tokens.bin / missing.bin ([T*B, P]), tfeat.bin
([B, F]) and expected.bin (framecost's output [T*B, p*p*C]). Runs the same
math as forwardTokens in src/model/dit.ts, times it, counts its FLOPs the way
PyTorch does, and prints one JSON object on stdout.

Usage: python3 bench/peer_pytorch.py DIR --threads N --runs N
"""

import argparse
import json
import math
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F


def load(d, name, shape):
    return torch.from_numpy(np.fromfile(os.path.join(d, name), dtype="<f4").reshape(shape).copy())


class DispatchFlopCounter:
    """torch.utils.flop_counter.FlopCounterMode's rules for torch < 2.1, which lacks it:
    matrix products only (mm, addmm, bmm, baddbmm), 2 FLOPs per multiply-accumulate.
    aten.matmul is counted too: under inference_mode it reaches the dispatcher undecomposed,
    where FlopCounterMode would have seen the bmm it decomposes into."""

    name = "FlopCounterMode rules re-implemented with TorchDispatchMode (torch < 2.1)"

    def __init__(self):
        from torch.utils._python_dispatch import TorchDispatchMode

        counter = self
        self.total = 0
        aten = torch.ops.aten

        def mm(a, b):
            return 2 * a.shape[0] * a.shape[1] * b.shape[1]

        def bmm(a, b):
            return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]

        def matmul(a, b):
            out = torch.broadcast_shapes(a.shape[:-2], b.shape[:-2]).numel() if a.dim() > 2 or b.dim() > 2 else 1
            return 2 * out * a.shape[-2] * a.shape[-1] * b.shape[-1]

        rules = {
            aten.matmul.default: lambda args: matmul(args[0], args[1]),
            aten.mm.default: lambda args: mm(args[0], args[1]),
            aten.addmm.default: lambda args: mm(args[1], args[2]),
            aten.bmm.default: lambda args: bmm(args[0], args[1]),
            aten.baddbmm.default: lambda args: bmm(args[1], args[2]),
        }

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                rule = rules.get(func)
                if rule is not None:
                    counter.total += rule(args)
                return func(*args, **(kwargs or {}))

        self.mode = Mode()

    def __enter__(self):
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        return self.mode.__exit__(*exc)

    def get_total_flops(self):
        return self.total


def flop_counter():
    try:
        from torch.utils.flop_counter import FlopCounterMode

        mode = FlopCounterMode(display=False)
        mode.name = "torch.utils.flop_counter.FlopCounterMode"
        return mode
    except ImportError:
        return DispatchFlopCounter()


def blas_library():
    """The BLAS shared library this process mapped (Debian picks it through update-alternatives)."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.split()[-1]}
        names = sorted({os.path.basename(os.path.realpath(p)) for p in libs if "lapack" not in p})
        return ", ".join(names) or "none mapped"
    except OSError:
        return "unknown"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    d = a.dir
    meta = json.load(open(os.path.join(d, "meta.json")))
    cfg = meta["config"]
    B = meta["batch"]
    S, p, C, K = cfg["imageSize"], cfg["patch"], cfg["channels"], cfg["contextFrames"]
    T = (S // p) ** 2
    D, H = cfg["width"], cfg["heads"]
    dh = D // H
    P = p * p * C * (K + 1)
    R = T * B

    flat = np.fromfile(os.path.join(d, "weights.bin"), dtype="<f4")
    W = {
        s["name"]: torch.from_numpy(flat[s["offset"] : s["offset"] + s["size"]].reshape(s["shape"]).copy())
        for s in meta["params"]
    }
    pos = load(d, "pos.bin", (T, 1, D))
    tokens = load(d, "tokens.bin", (R, P))
    missing = load(d, "missing.bin", (R, P))
    tfeat = load(d, "tfeat.bin", (B, cfg["freqDim"]))
    expected = load(d, "expected.bin", (R, p * p * C))

    def dense(x, name):
        return torch.addmm(W[name + ".b"], x, W[name + ".w"])  # [N, in] @ [in, out] + b

    def silu(x):
        return x * torch.sigmoid(x)

    def gelu(x):
        return x * torch.sigmoid(1.702 * x)

    def ln(x):
        return F.layer_norm(x, (D,), eps=1e-6)

    def modulate(x, shift, scale):
        return (x.reshape(T, B, D) * (1 + scale) + shift).reshape(R, D)

    def gated(x, y, gate):
        return (x.reshape(T, B, D) + y.reshape(T, B, D) * gate).reshape(R, D)

    def attention(q, k, v):
        q4 = q.reshape(T, B, H, dh).permute(1, 2, 0, 3)  # [B, H, T, dh]
        k4 = k.reshape(T, B, H, dh).permute(1, 2, 3, 0)  # [B, H, dh, T]
        v4 = v.reshape(T, B, H, dh).permute(1, 2, 0, 3)
        s = torch.softmax(torch.matmul(q4, k4) * (1 / math.sqrt(dh)), dim=-1)  # [B, H, T, T]
        return torch.matmul(s, v4).permute(2, 0, 1, 3).reshape(R, D)

    def forward():
        empty = W["empty"].reshape(T, 1, P)
        x = tokens + (missing.reshape(T, B, P) * empty).reshape(R, P)
        h = (dense(x, "patch").reshape(T, B, D) + pos).reshape(R, D)
        temb1 = torch.addmm(W["temb.b1"], tfeat, W["temb.w1"])
        c = torch.addmm(W["temb.b2"], silu(temb1), W["temb.w2"])
        sc = silu(c)
        for i in range(cfg["depth"]):
            b = "block%d." % i
            shift1, scale1, gate1, shift2, scale2, gate2 = dense(sc, b + "ada").chunk(6, dim=1)
            n1 = modulate(ln(h), shift1, scale1)
            a = attention(dense(n1, b + "q"), dense(n1, b + "k"), dense(n1, b + "v"))
            h = gated(h, dense(a, b + "o"), gate1)
            n2 = modulate(ln(h), shift2, scale2)
            m = torch.addmm(W[b + "mlp.b2"], gelu(torch.addmm(W[b + "mlp.b1"], n2, W[b + "mlp.w1"])), W[b + "mlp.w2"])
            h = gated(h, m, gate2)
        shift, scale = dense(sc, "final.ada").chunk(2, dim=1)
        return torch.addmm(W["final.b"], modulate(ln(h), shift, scale), W["final.w"])

    with torch.inference_mode():
        t0 = time.perf_counter()
        out = forward()
        warmup_ms = 1000 * (time.perf_counter() - t0)
        samples = []
        for _ in range(a.runs):
            t0 = time.perf_counter()
            forward()
            samples.append(1000 * (time.perf_counter() - t0))
    counter = flop_counter()
    with torch.inference_mode(), counter:
        forward()
    json.dump(
        {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "runs": a.runs,
            "warmupMs": warmup_ms,
            "medianMs": statistics.median(samples),
            "flopsPerCall": counter.get_total_flops(),
            "flopCounter": counter.name,
            "maxAbsDiff": float((out - expected).abs().max()),
            "blas": blas_library(),
        },
        sys.stdout,
    )
    print()


if __name__ == "__main__":
    main()
