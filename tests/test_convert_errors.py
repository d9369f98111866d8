"""Bad input to convert / quantize: clear errors naming the file or tensor,
and never a partial output file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tiny_models import make_llama

import kquants
from kquants.convert.hf import save_safetensors

SMALL = dict(n_layer=1, hidden=256, n_head=2, n_kv=2, ff=256, vocab=300)


def leftovers(folder: Path) -> list:
    """Output files and temporary files (hidden, beside the destination)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or p.suffix == ".gguf")


@pytest.fixture
def hf(tmp_path):
    d, ts = make_llama(tmp_path / "hf", dtype="f32", **SMALL)
    return d, ts


def test_missing_config(hf, tmp_path):
    d, _ = hf
    (d / "config.json").unlink()
    with pytest.raises(kquants.KQuantsIOError, match="config.json"):
        kquants.quantize(d, tmp_path / "o.gguf", "q8_0", quiet=True)
    assert leftovers(tmp_path) == []


def test_missing_weights(hf, tmp_path):
    d, _ = hf
    (d / "model.safetensors").unlink()
    with pytest.raises(kquants.KQuantsIOError, match="no weights found"):
        kquants.convert(d, tmp_path / "o.gguf", quiet=True)


def test_missing_shard(tmp_path):
    d, _ = make_llama(tmp_path / "hf", sharded=True, **SMALL)
    (d / "model-00002-of-00002.safetensors").unlink()
    with pytest.raises(kquants.KQuantsIOError, match="model-00002-of-00002.safetensors"):
        kquants.convert(d, tmp_path / "o.gguf", quiet=True)


def test_unsupported_architecture(hf, tmp_path):
    d, _ = hf
    cfg = json.loads((d / "config.json").read_text())
    cfg["architectures"] = ["GPTNeoXForCausalLM"]
    (d / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(kquants.KQuantsError, match=r"GPTNeoXForCausalLM.*supported:.*LlamaForCausalLM"):
        kquants.convert(d, tmp_path / "o.gguf", quiet=True)


def test_shape_disagrees_with_config(hf, tmp_path):
    d, ts = hf
    ts["model.layers.0.mlp.up_proj.weight"] = ts["model.layers.0.mlp.up_proj.weight"][:128]
    save_safetensors(d / "model.safetensors", ts)
    with pytest.raises(kquants.KQuantsError, match=r"model.layers.0.mlp.up_proj.weight.*\[128, 256\].*\[256, 256\]"):
        kquants.convert(d, tmp_path / "o.gguf", quiet=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_or_inf_in_a_weight(hf, tmp_path, bad):
    d, ts = hf
    ts["model.layers.0.self_attn.o_proj.weight"][3, 5] = bad
    save_safetensors(d / "model.safetensors", ts)
    out = tmp_path / "o.gguf"
    with pytest.raises(kquants.KQuantsError, match=r"blk.0.attn_output.weight.*NaN or Inf"):
        kquants.quantize(d, out, "q4_k_m", quiet=True)
    assert leftovers(tmp_path) == []


def test_nan_in_gguf_input(hf, tmp_path, monkeypatch):
    d, ts = hf
    ts["model.layers.0.mlp.down_proj.weight"][0, 0] = np.inf
    save_safetensors(d / "model.safetensors", ts)
    # a GGUF with the Inf in it (convert checks too, so build it with the check bypassed)
    f16 = tmp_path / "in.gguf"
    from kquants.convert import converter, pipeline
    with monkeypatch.context() as m:
        m.setattr(converter, "check_finite", lambda *a: None)
        m.setattr(pipeline, "_check_float", lambda *a: None)
        kquants.convert(d, f16, quiet=True)
    with pytest.raises(kquants.KQuantsError, match="blk.0.ffn_down.weight"):
        kquants.quantize(f16, tmp_path / "o.gguf", "q8_0", quiet=True)
    assert leftovers(tmp_path) == ["in.gguf"]


def test_output_equals_input(hf, tmp_path):
    d, _ = hf
    f16 = tmp_path / "m.gguf"
    kquants.convert(d, f16, quiet=True)
    with pytest.raises(kquants.KQuantsError, match="is the input"):
        kquants.quantize(f16, f16, "q8_0", quiet=True)
    with pytest.raises(kquants.KQuantsError, match="is the input"):
        kquants.quantize(str(f16), tmp_path / "." / "m.gguf", "q8_0", quiet=True)
    # a checkpoint file of a HF folder is an input too
    weights = d / "model.safetensors"
    before = weights.read_bytes()
    with pytest.raises(kquants.KQuantsError, match="is the input"):
        kquants.convert(d, weights, quiet=True)
    assert weights.read_bytes() == before
    assert leftovers(tmp_path) == ["m.gguf"] and not [p for p in d.iterdir() if p.name.startswith(".")]


def test_unknown_preset_and_bad_override(hf, tmp_path):
    d, _ = hf
    with pytest.raises(kquants.KQuantsError, match="unknown preset 'q9_z'.*q4_k_m"):
        kquants.quantize(d, tmp_path / "o.gguf", "q9_z", quiet=True)
    with pytest.raises(kquants.KQuantsError, match="PATTERN=TYPE"):
        kquants.quantize(d, tmp_path / "o.gguf", "q4_0", overrides=["attn_v"], quiet=True)
    with pytest.raises(kquants.KQuantsError, match="unknown type"):
        kquants.quantize(d, tmp_path / "o.gguf", "q4_0", overrides={"attn_v": "q7_q"}, quiet=True)


def test_requantize_refused(hf, tmp_path):
    d, _ = hf
    q = tmp_path / "q.gguf"
    kquants.quantize(d, q, "q8_0", quiet=True)
    with pytest.raises(kquants.KQuantsError, match="already quantized.*allow_requantize"):
        kquants.quantize(q, tmp_path / "q4.gguf", "q4_0", quiet=True)
    kquants.quantize(q, tmp_path / "q4.gguf", "q4_0", quiet=True, allow_requantize=True)


def test_full_disk(hf, tmp_path):
    """A write that fails (file size limit, as a full disk would) leaves no output."""
    d, _ = hf
    out = tmp_path / "out"
    out.mkdir()
    code = textwrap.dedent(f"""
        import resource, signal, sys
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # get EFBIG instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))
        import kquants
        try:
            kquants.quantize({str(d)!r}, {str(out / 'o.gguf')!r}, "f32", quiet=True)
        except kquants.KQuantsIOError as e:
            print("IOERROR", e)
            sys.exit(3)
        sys.exit(0)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "o.gguf" in r.stdout and "write failed" in r.stdout
    assert list(out.iterdir()) == []
