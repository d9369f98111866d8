"""Fuzzing the GGUF reader: thousands of corrupted files, none may crash.

The mutants are made and opened by gguf_fuzz_worker.py in a subprocess, so a
segfault or abort shows up here as a failure with the mutation that caused
it. Bases: a small file with every metadata type and several tensor types,
the first 64 KiB of SmolLM2 (header, early vocabulary), and SmolLM2's whole
header region (all 272 tensor infos, no data), and that region with the tensor
count zeroed so that it loads. About 10 s.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import kquants

HERE = Path(__file__).resolve().parent
SEED = int(os.environ.get("KQUANTS_FUZZ_SEED", "20240611"))
# Iterations per base; KQUANTS_FUZZ_SCALE multiplies them for longer runs.
SCALE = float(os.environ.get("KQUANTS_FUZZ_SCALE", "1"))


def small_base(path: Path) -> None:
    rng = np.random.default_rng(0)
    VT = kquants.GGUFValueType
    with kquants.GGUFWriter(path, arch="llama") as w:
        w.add_uint8("a.u8", 1)
        w.add_int16("a.i16", -2)
        w.add_uint32("a.u32", 3)
        w.add_int64("a.i64", -4)
        w.add_float32("a.f32", 0.5)
        w.add_float64("a.f64", 0.25)
        w.add_bool("a.b", True)
        w.add_string("a.s", "hello")
        w.add_array("a.toks", ["<s>", "</s>", "a", "b", "ü"])
        w.add_array("a.ids", np.arange(6, dtype=np.int32))
        w.add_array("a.bools", [True, False])
        w.add_array("a.nested", [[1, 2], [3]], sub_type=VT.ARRAY)
        tensors = [("f32", (2, 8), "F32"), ("f16", (2, 8), "F16"), ("bf16", (8,), "BF16"),
                   ("q8", (2, 32), "Q8_0"), ("q4", (1, 32), "Q4_0"), ("q4k", (1, 256), "Q4_K"),
                   ("q6k", (1, 256), "Q6_K")]
        sizes = [w.add_tensor_info(n, s, t) for n, s, t in tensors]
        for nb in sizes:
            w.write_tensor_data(rng.integers(0, 256, nb, dtype=np.uint8))


def test_fuzz_reader_never_crashes(tmp_path, smollm2):
    small = tmp_path / "small.gguf"
    small_base(small)
    with kquants.GGUFFile(smollm2) as f:
        header_end = f.data_offset
    raw = smollm2.read_bytes()[:header_end]
    head = tmp_path / "smollm2_head.gguf"
    head.write_bytes(raw[:1 << 16])
    header = tmp_path / "smollm2_header.gguf"
    header.write_bytes(raw)
    # The same with the tensor count zeroed: a valid file holding SmolLM2's
    # metadata (the tensor infos become ignored trailing bytes).
    meta = tmp_path / "smollm2_meta.gguf"
    meta.write_bytes(raw[:8] + bytes(8) + raw[16:])
    n = lambda k: max(1, int(k * SCALE))  # noqa: E731
    bases = [f"{small}:{n(2500)}", f"{head}:{n(600)}", f"{header}:{n(120)}:{1 << 20}",
             f"{meta}:{n(150)}:{1 << 16}"]
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(kquants.__file__).parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "gguf_fuzz_worker.py"), "--out", str(out),
                           "--seed", str(SEED), *bases],
                          capture_output=True, text=True, timeout=600, env=env)
    if proc.returncode < 0:
        raise AssertionError(f"fuzz worker crashed with signal {-proc.returncode} (seed {SEED}); "
                             f"last mutant: {out / 'mutant.gguf'}\n{proc.stderr[-3000:]}")
    assert proc.returncode == 0, f"seed {SEED}:\n{proc.stdout[-2000:]}\n{proc.stderr[-5000:]}"
    stats = json.loads(proc.stdout.strip().splitlines()[-1])
    print(stats)
    s = stats["small.gguf"]
    assert s["loaded"] + s["rejected"] == s["iterations"]
    # Both outcomes occur: the mutations reach past the first check.
    assert s["loaded"] > 0 and s["rejected"] > 0
    assert stats["smollm2_head.gguf"]["rejected"] > 0
    assert stats["smollm2_header.gguf"]["rejected"] > 0
    m = stats["smollm2_meta.gguf"]
    assert m["base_loads"] and m["loaded"] > 0 and m["rejected"] > 0
