"""One build, any x86-64 CPU: the matmul kernels chosen for a CPU without
AVX-512 run without an illegal instruction and agree with the reference.

* KQUANTS_ISA=avx2 in a subprocess: the override selects the AVX2 set.
* KQUANTS_DPBF16=0 and =1: BF16 mat-mat on the f32 kernel and on the
  vdpbf16ps one (the latter chosen by default only where it is fast: AMD),
  both against the reference, awkward shapes included.
* qemu-x86_64 -cpu Haswell (AVX2, no AVX-512) runs the Python interpreter with
  the extension under emulation: cpuid reports no AVX-512, so the dispatcher
  must pick avx2 by itself, and any AVX-512 instruction reached from shared
  code would be a SIGILL. Skipped where qemu-user is not installed
  (`apt-get install qemu-user`); ~30 s.
"""
from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import kquants

# Every matmul type, mat-vec and mat-mat, prepared and not, against the
# scalar reference; prints the ISA in use.
SCRIPT = r"""
import numpy as np, kquants
info = kquants.system_info()
rng = np.random.default_rng(0)
for t in kquants.types():
    if t.matmul_rtol <= 0:
        continue
    k = 2 * max(t.block_size, 256)
    w = rng.standard_normal((37, k)).astype(np.float32)
    q = kquants.quantize_array(w, t.name)
    pw = kquants.PreparedWeight(q, t.name, w.shape)
    for n in (1, 7):
        x = rng.standard_normal((n, k)).astype(np.float32)
        ref = kquants.matmul(q, t.name, w.shape, x, isa="generic").astype(np.float64)
        scale = np.abs(x) @ np.abs(kquants.dequantize_array(q, t.name, w.shape)).T + 1e-30
        for y in (kquants.matmul(q, t.name, w.shape, x), pw.matmul(x)):
            err = float((np.abs(y - ref) / scale).max())
            assert err <= 1e-5, (t.name, n, err)
print("ISA", info["active_isa"], " ".join(info["supported_isas"]))
"""


def _env(**extra) -> dict:
    env = dict(os.environ, **extra)
    pkg_root = str(Path(kquants.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join([pkg_root, env.get("PYTHONPATH", "")])
    return env


def _supported() -> list[str]:
    return kquants.system_info()["supported_isas"]


@pytest.mark.skipif("avx2" not in _supported(), reason="CPU without AVX2")
def test_kquants_isa_avx2_override():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300,
                       env=_env(KQUANTS_ISA="avx2"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ISA avx2 " in r.stdout, r.stdout


BF16_SCRIPT = r"""
import numpy as np, kquants
rng = np.random.default_rng(1)
for m, k, n in ((37, 33, 5), (64, 256, 13), (100, 257, 12), (33, 600, 25), (70, 1000, 40)):
    w = rng.standard_normal((m, k)).astype(np.float32)
    q = kquants.quantize_array(w, "BF16")
    x = rng.standard_normal((n, k)).astype(np.float32)
    ref = kquants.matmul(q, "BF16", w.shape, x, isa="generic").astype(np.float64)
    scale = np.abs(x) @ np.abs(kquants.dequantize_array(q, "BF16", w.shape)).T + 1e-30
    for y in (kquants.matmul(q, "BF16", w.shape, x, threads=1), kquants.PreparedWeight(q, "BF16", w.shape).matmul(x)):
        err = float((np.abs(y - ref) / scale).max())
        assert err <= 1e-5, (m, k, n, err)
print("FEATURES", kquants.system_info()["cpu_features"])
"""


@pytest.mark.skipif("avx512vnni" not in _supported(), reason="CPU without AVX512_BF16")
@pytest.mark.parametrize("dp", ["0", "1"])
def test_bf16_matmat_both_kernels(dp):
    r = subprocess.run([sys.executable, "-c", BF16_SCRIPT], capture_output=True, text=True, timeout=300,
                       env=_env(KQUANTS_DPBF16=dp))
    assert r.returncode == 0, r.stdout + r.stderr
    assert ("fast-dpbf16" in r.stdout) == (dp == "1"), r.stdout


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64") or shutil.which("qemu-x86_64") is None,
                    reason="needs x86-64 and qemu-x86_64 (apt-get install qemu-user)")
def test_haswell_under_qemu():
    r = subprocess.run(["qemu-x86_64", "-cpu", "Haswell", sys.executable, "-c", SCRIPT], capture_output=True,
                       text=True, timeout=900, env=_env(KQUANTS_ISA=""))
    assert r.returncode == 0, r.stdout + r.stderr[-4000:]
    isa_line = next(line for line in r.stdout.splitlines() if line.startswith("ISA "))
    assert isa_line.split()[1] == "avx2" and "avx512" not in isa_line, isa_line


@pytest.mark.parametrize("isa", [i for i in kquants.system_info()["supported_isas"] if i != "generic"])
def test_softmax_row_matches_reference(isa):
    """Attention's softmax row of each kernel set against the scalar reference
    (SIMD exp within a few ulp; fp16-rounded output within one fp16 step)."""
    from kquants import _core
    rng = np.random.default_rng(5)
    for n in (1, 7, 15, 16, 17, 100, 513):
        for spread in (0.1, 5.0, 200.0):  # 200: most terms underflow
            x = (rng.standard_normal(n) * spread).astype(np.float32)
            ref = _core.softmax_row(x, 0.125, False, "generic")
            got = _core.softmax_row(x, 0.125, False, isa)
            np.testing.assert_allclose(got, ref, rtol=2e-6, atol=1e-30)
            assert abs(float(got.astype(np.float64).sum()) - 1) < 1e-5
            r16 = _core.softmax_row(x, 0.125, True, isa)
            np.testing.assert_allclose(r16, ref, rtol=1e-3, atol=6e-8)
            assert np.array_equal(r16, r16.astype(np.float16).astype(np.float32))
