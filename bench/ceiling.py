"""The physical ceiling of a routing decision on this CPU: the matrix-multiply throughput OpenVINO
reaches in float32, bfloat16 and int8, turned into decisions per second.

MiniLM-L6 reads a 128-word-piece prompt in about 2.7 GFLOP (six layers of 4 x 384^2 attention and
2 x 384 x 1,536 feed-forward weights, 10.6 M in all, times 2 x 130 pieces with [CLS] and [SEP];
attention's own 130 x 130 products add about 2%), almost all of it in multiplies of the shapes
timed here: 384 by 384 x 1536 and 1536 by 1536 x 384, 4,096 rows deep (a micro-batch of 32
prompts) and 128 (one prompt). Each precision's fastest call over those shapes, divided by 2.7
GFLOP, is the most decisions per second that arithmetic allows on these cores; the rate
bench/router_latency.py measures, against it, says how close the encoder gets. On a shared
machine the ceiling is a best call and the measured rate a median, so the share is a lower bound.
int8 is OpenVINO's quantised multiply (FakeQuantize on both operands, run with VNNI
instructions); bf16 the inference precision hint.

    .venv/bin/python -m bench.ceiling [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

import numpy as np

GFLOP_PER_DECISION = 2.7
SHAPES = ((4096, 384, 1536), (4096, 1536, 384), (128, 384, 1536))
KINDS = {"fp32": ("f32", False), "bf16": ("bf16", False), "int8": ("f32", True)}


def _model(ov: Any, rows: int, inner: int, outer: int, int8: bool) -> Any:
    from openvino import opset13 as ops

    x = ops.parameter([rows, inner], ov.Type.f32, name="x")
    rng = np.random.default_rng(0)
    w: Any = ops.constant((rng.standard_normal((inner, outer)) * 0.05).astype(np.float32))
    a: Any = x
    if int8:

        def fq(node: Any, lo: float, hi: float, levels: int) -> Any:
            low, high = (ops.constant(np.array(v, dtype=np.float32)) for v in (lo, hi))
            return ops.fake_quantize(node, low, high, low, high, levels)

        a, w = fq(x, 0.0, 6.0, 256), fq(w, -0.2, 0.2, 255)  # u8 activations, i8 weights
    return ov.Model([ops.matmul(a, w, False, False)], [x])


def measure(threads: int | None, seconds: float = 1.5) -> dict[str, dict[str, float]]:
    """{kind: {"gops": the best shape's fastest call, "decisions_per_s": that / 2.7}}."""
    from router.openvino import import_openvino

    ov = import_openvino()
    core = ov.Core()
    out: dict[str, dict[str, float]] = {}
    for kind, (hint, int8) in KINDS.items():
        rates = []
        for rows, inner, outer in SHAPES:
            config: dict[str, Any] = {
                "INFERENCE_PRECISION_HINT": hint,
                "PERFORMANCE_HINT": "LATENCY",
            }
            if threads:
                config["INFERENCE_NUM_THREADS"] = threads
            compiled = core.compile_model(_model(ov, rows, inner, outer, int8), "CPU", config)
            request = compiled.create_infer_request()
            x = np.abs(np.random.default_rng(1).standard_normal((rows, inner))).astype(np.float32)
            for _ in range(3):
                request.infer({0: x})
            times: list[float] = []
            deadline = time.perf_counter() + seconds
            while time.perf_counter() < deadline or len(times) < 5:
                start = time.perf_counter()
                request.infer({0: x})
                times.append(time.perf_counter() - start)
            # The fastest call: what the cores deliver when nothing else takes them (the machine
            # is shared; contention only ever slows a call down).
            rates.append(2 * rows * inner * outer / min(times) / 1e9)
        best = max(rates)
        out[kind] = {"gops": best, "decisions_per_s": best / GFLOP_PER_DECISION}
        print(
            f"{kind}: {best:.0f} GOP/s -> {best / GFLOP_PER_DECISION:.0f} decisions/s", flush=True
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="default: every core")
    args = parser.parse_args()
    result = {"ceiling": measure(args.threads), "load_average": os.getloadavg()}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
