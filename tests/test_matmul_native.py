"""NEON matmul kernels, cross-compiled for aarch64 and run under qemu-aarch64.

Builds tests/native/matmul_check.cpp with the project's shared C++ code and
csrc/isa/neon (no Python: the extension is x86), then runs it under
qemu-user. Skips when the cross compiler or qemu is missing; CI installs
them with `apt-get install -y g++-aarch64-linux-gnu qemu-user`.
The build goes to build/native-aarch64 and is reused while no source under
csrc/ or tests/native/ is newer than the binary.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CXX = "aarch64-linux-gnu-g++"
QEMU = "qemu-aarch64"
# The folders CMakeLists.txt compiles as shared code, and the NEON folder
# with its flags (KQ_ISA_neon_FLAGS there).
SHARED_DIRS = ["core", "quants", "gguf", "ops", "matmul"]
NEON_FLAGS = ["-march=armv8.2-a+dotprod+fp16"]
COMMON_FLAGS = ["-std=c++17", "-O2", "-Wall", "-Wextra", "-ffp-contract=off", "-fno-math-errno", "-pthread"]


def _sources():
    shared = [p for d in SHARED_DIRS for p in sorted((ROOT / "csrc" / d).glob("*.cpp"))]
    neon = sorted((ROOT / "csrc" / "isa" / "neon").glob("*.cpp"))
    return shared, neon, ROOT / "tests" / "native" / "matmul_check.cpp"


def _newest_input() -> float:
    files = [p for p in (ROOT / "csrc").rglob("*") if p.is_file()]
    files += [p for p in (ROOT / "tests" / "native").rglob("*") if p.is_file()]
    return max(p.stat().st_mtime for p in files)


def _build(out: Path) -> Path:
    exe = out / "matmul_check"
    if exe.exists() and exe.stat().st_mtime > _newest_input():
        return exe
    gen = out / "generated"
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "kq_isa_registry.inc").write_text("KQ_ISA(neon)\n")
    shared, neon, driver = _sources()
    includes = [f"-I{ROOT / 'csrc'}", f"-I{gen}"]
    jobs = [(src, []) for src in shared + [driver]] + [(src, NEON_FLAGS) for src in neon]

    def compile_one(job):
        src, extra = job
        obj = out / (src.relative_to(ROOT).as_posix().replace("/", "_") + ".o")
        cmd = [CXX, *COMMON_FLAGS, *extra, *includes, "-c", str(src), "-o", str(obj)]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"{' '.join(cmd)}\n{r.stderr}")
        return obj

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        objs = list(pool.map(compile_one, jobs))
    subprocess.run([CXX, "-static", "-pthread", *map(str, objs), "-o", str(exe)], check=True)
    return exe


@pytest.mark.skipif(shutil.which(CXX) is None or shutil.which(QEMU) is None,
                    reason=f"{CXX} / {QEMU} not installed (apt-get install g++-aarch64-linux-gnu qemu-user)")
def test_neon_matmul_under_qemu():
    exe = _build(ROOT / "build" / "native-aarch64")
    r = subprocess.run([QEMU, "-cpu", "max", str(exe)], capture_output=True, text=True, timeout=900)
    print(r.stdout)
    assert "neon" in r.stdout.splitlines()[0], f"NEON not selected under qemu:\n{r.stdout}\n{r.stderr}"
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
