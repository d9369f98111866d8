"""Importance-matrix files (llama-imatrix GGUF and legacy .dat) and the CLI."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from tiny_models import make_llama, tensor_bytes

import kquants
from kquants.convert.imatrix import load_imatrix, save_imatrix_dat, save_imatrix_gguf

SMALL = dict(n_layer=2, hidden=256, n_head=4, n_kv=2, ff=256, vocab=300)


def test_gguf_imatrix_divides_by_counts(tmp_path):
    sums = {"blk.0.attn_q.weight": np.arange(1, 9, dtype=np.float32).reshape(2, 4),   # two experts
            "blk.0.ffn_up.weight": np.full((1, 4), 6.0, dtype=np.float32)}
    counts = {"blk.0.attn_q.weight": [4.0, 0.0], "blk.0.ffn_up.weight": [3.0]}
    p = tmp_path / "im.gguf"
    save_imatrix_gguf(p, sums, counts, datasets=["moby"], chunk_count=7)
    im = load_imatrix(p)
    np.testing.assert_array_equal(im.data["blk.0.attn_q.weight"], [0.25, 0.5, 0.75, 1.0, 1, 1, 1, 1])
    np.testing.assert_array_equal(im.data["blk.0.ffn_up.weight"], [2, 2, 2, 2])
    assert im.datasets == ["moby"] and im.chunk_count == 7


def test_legacy_dat_divides_by_ncall(tmp_path):
    p = tmp_path / "im.dat"
    save_imatrix_dat(p, {"blk.0.attn_v.weight": np.array([2, 4, 6], dtype=np.float32)}, ncall=2, chunks=5,
                     dataset="wiki")
    im = load_imatrix(p)
    np.testing.assert_array_equal(im.data["blk.0.attn_v.weight"], [1, 2, 3])
    assert im.chunk_count == 5 and im.datasets == ["wiki"]


def test_imatrix_file_equals_dict_and_adds_keys(tmp_path):
    hf, _ = make_llama(tmp_path / "hf", **SMALL)
    f16 = tmp_path / "f16.gguf"
    kquants.convert(hf, f16, quiet=True)
    with kquants.GGUFFile(f16) as g:
        ws = {t.name: (np.arange(t.ne[0], dtype=np.float32) % 5 + 1) for t in g.tensors if len(t.ne) == 2}
    save_imatrix_dat(tmp_path / "im.dat", {k: v * 3 for k, v in ws.items()}, ncall=3, chunks=4, dataset="d")
    a, b = tmp_path / "a.gguf", tmp_path / "b.gguf"
    kquants.quantize(f16, a, "q4_k_m", imatrix=tmp_path / "im.dat", quiet=True)
    kquants.quantize(f16, b, "q4_k_m", imatrix=ws, quiet=True)
    ta = tensor_bytes(a)
    assert ta == tensor_bytes(b)
    c = tmp_path / "c.gguf"
    kquants.quantize(f16, c, "q4_k_m", quiet=True)
    assert tensor_bytes(c) != ta   # the imatrix matters
    with kquants.GGUFFile(a) as f:
        kv = f.metadata
    assert kv["quantize.imatrix.entries_count"] == len(ws) and kv["quantize.imatrix.chunks_count"] == 4
    assert kv["quantize.imatrix.dataset"] == "d" and kv["quantize.imatrix.file"].endswith("im.dat")
    # requantizing with another imatrix: its keys replace the input's, at the end (as llama-quantize)
    save_imatrix_dat(tmp_path / "im2.dat", {k: v * 2 for k, v in ws.items()}, ncall=2, chunks=9, dataset="e")
    r = tmp_path / "r.gguf"
    kquants.quantize(a, r, "q4_0", imatrix=tmp_path / "im2.dat", allow_requantize=True, quiet=True)
    with kquants.GGUFFile(r) as f:
        keys = list(f.fields)
        assert f.get("quantize.imatrix.chunks_count") == 9 and f.get("quantize.imatrix.dataset") == "e"
    assert keys[-6:] == ["general.quantization_version", "general.file_type", "quantize.imatrix.file",
                         "quantize.imatrix.dataset", "quantize.imatrix.entries_count", "quantize.imatrix.chunks_count"]


def test_imatrix_errors(tmp_path):
    p = tmp_path / "bad.dat"
    save_imatrix_dat(p, {"x": np.array([1, np.nan], dtype=np.float32)})
    with pytest.raises(kquants.KQuantsError, match="non-finite"):
        load_imatrix(p)
    with pytest.raises(kquants.KQuantsIOError, match="not found"):
        load_imatrix(tmp_path / "nope.gguf")
    hf, _ = make_llama(tmp_path / "hf", **SMALL)
    with pytest.raises(kquants.KQuantsError, match=r"blk.0.attn_q.weight.*expected 256"):
        kquants.quantize(hf, tmp_path / "o.gguf", "q4_0", imatrix={"blk.0.attn_q.weight": np.ones(100)}, quiet=True)


def test_cli(tmp_path):
    hf, _ = make_llama(tmp_path / "hf", **SMALL)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}

    def run(*args):
        return subprocess.run([sys.executable, "-m", "kquants", *map(str, args)], capture_output=True,
                              text=True, env=env, timeout=300)
    r = run("convert", hf, tmp_path / "f16.gguf", "--outtype", "f16", "--quiet")
    assert r.returncode == 0, r.stderr
    r = run("quantize", tmp_path / "f16.gguf", tmp_path / "q.gguf", "Q4_K_M", "--override", "attn_v=q8_0",
            "--threads", "2", "--quiet")
    assert r.returncode == 0, r.stderr
    with kquants.GGUFFile(tmp_path / "q.gguf") as f:
        types = {t.name: t.type for t in f.tensors}
    assert types["blk.0.attn_v.weight"] == 8 and types["blk.0.attn_q.weight"] == 12   # Q8_0, Q4_K
    r = run("export-hf", tmp_path / "q.gguf", tmp_path / "hf2", "--quiet")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "hf2" / "model.safetensors").is_file()
    r = run("quantize", tmp_path / "missing.gguf", tmp_path / "x.gguf", "q4_0")
    assert r.returncode == 1 and "missing.gguf" in r.stderr


def test_progress_bar(tmp_path, capsys):
    hf, _ = make_llama(tmp_path / "hf", n_layer=1, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)
    kquants.quantize(hf, tmp_path / "o.gguf", "q8_0")
    err = capsys.readouterr().err
    assert "quantize q8_0" in err and "B/s" in err
    kquants.quantize(hf, tmp_path / "o.gguf", "q8_0", quiet=True)
    assert capsys.readouterr().err == ""
