"""`kquants info` (cli.main and `python -m kquants`)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import kquants
from kquants import cli


def run_main(capsys, *argv):
    rc = cli.main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_info_smollm2(capsys, smollm2):
    rc, out, err = run_main(capsys, "info", str(smollm2))
    assert rc == 0 and err == ""
    assert "GGUF v3" in out and "alignment 32" in out
    assert "llama.block_count" in out and " 30\n" in out
    # Huge arrays: type and length only.
    assert "tokenizer.ggml.tokens" in out and "[STRING]   <49152 items>" in out
    assert "tokenizer.ggml.merges" in out and "<48900 items>" in out
    assert "<|im_start|>" not in out  # no vocabulary dump
    assert len(out) < 40_000
    assert "blk.0.attn_q.weight" in out and "Q4_1" in out and "576x576" in out
    with kquants.GGUFFile(smollm2) as f:
        bpw = 8 * sum(t.nbytes for t in f.tensors) / sum(t.n_elements for t in f.tensors)
    assert f"{bpw:.3f} bits per weight" in out
    assert "Total: 272 tensors, 134,515,008 params" in out


def test_info_json(capsys, smollm2):
    rc, out, _ = run_main(capsys, "info", "--json", str(smollm2))
    assert rc == 0
    d = json.loads(out)
    assert d["version"] == 3 and len(d["tensors"]) == 272
    assert d["metadata"]["tokenizer.ggml.tokens"] == {"type": "ARRAY", "sub_type": "STRING", "count": 49152}
    assert d["metadata"]["llama.block_count"] == {"type": "UINT32", "value": 30}
    assert d["types"]["Q8_0"]["tensors"] == 1
    assert d["n_params"] == 134_515_008
    assert abs(d["bits_per_weight"] - 8 * d["tensor_bytes"] / d["n_params"]) < 1e-12
    rc, out, _ = run_main(capsys, "info", "--json", "--no-tensors", str(smollm2))
    assert json.loads(out)["tensors"] == []


def test_info_errors(capsys, tmp_path):
    rc, out, err = run_main(capsys, "info", str(tmp_path / "missing.gguf"))
    assert rc == 1 and "missing.gguf" in err and "No such file" in err
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF\x01\0\0\0" + bytes(16))
    rc, out, err = run_main(capsys, "info", str(bad))
    assert rc == 1 and "unsupported GGUF version 1" in err and str(bad) in err


def test_usage_errors(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        cli.main(["nosuchcommand"])
    assert e.value.code == 2


def test_command_table():
    assert "info" in cli.COMMANDS
    with pytest.raises(ValueError, match="twice"):
        cli.register(cli.COMMANDS["info"])


def test_python_dash_m(smollm2):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(kquants.__file__).parent.parent),
                                                       os.environ.get("PYTHONPATH", "")]))
    p = subprocess.run([sys.executable, "-m", "kquants", "info", "--no-tensors", str(smollm2)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "Total: 272 tensors" in p.stdout
