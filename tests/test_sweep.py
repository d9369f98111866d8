"""kquants.sweep / `kquants sweep`: one row per type, measured consistently with
kquants.perplexity and kquants.kl_divergence, written as markdown, JSON and PNG."""
from __future__ import annotations

import json

import numpy as np
import pytest

import kquants
from kquants import cli

from tiny_models import make_llama

TYPES = ["f16", "q8_0", "q4_k_m", "q2_k"]


@pytest.fixture(scope="module")
def hf(tmp_path_factory):
    d, _ = make_llama(tmp_path_factory.mktemp("sweep") / "hf", n_layer=2, hidden=256, n_head=4, n_kv=2, ff=512)
    return d


@pytest.fixture(scope="module")
def text(tmp_path_factory):
    rng = np.random.default_rng(3)
    words = ["the", "whale", "sea", "ship", "captain", "white", "harpoon", "deck", "sail", "water"]
    p = tmp_path_factory.mktemp("sweep_text") / "text.txt"
    p.write_text(" ".join(rng.choice(words, 1500)) + "\n")
    return p


@pytest.fixture(scope="module")
def result(hf, text, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep_out")
    return kquants.sweep(hf, TYPES, text, out, n_ctx=64, chunks=3, threads=2, pp_tokens=32, tg_tokens=4,
                         reps=1, quiet=True)


def test_rows(result):
    assert [r.type for r in result.rows] == TYPES
    assert result.reference == "f16"
    bpw = {r.type: r.bits_per_weight for r in result.rows}
    assert bpw["f16"] > bpw["q8_0"] > bpw["q4_k_m"] > bpw["q2_k"]
    ref = result.rows[0]
    assert ref.delta_ppl == 0 and ref.kld == 0 and ref.same_top == 1
    kld = {r.type: r.kld for r in result.rows}
    assert 0 < kld["q8_0"] < kld["q4_k_m"] < kld["q2_k"]
    for r in result.rows:
        assert r.delta_ppl == pytest.approx(r.ppl - ref.ppl)
        assert r.file_bytes > 0 and set(r.pp_ms) == set(r.tg_ms) == {1, 2}
        assert all(v > 0 for v in list(r.pp_ms.values()) + list(r.tg_ms.values()))
    assert result.n_chunks == 3 and result.n_ctx == 64


def test_rows_agree_with_perplexity_and_kld(result, text):
    by = {r.type: r for r in result.rows}
    ref = kquants.Model(by["f16"].path, n_ctx=64)
    toks = ref.tokenize(text.read_text())
    p = kquants.perplexity(ref, n_ctx=64, chunks=3, tokens=toks, quiet=True)
    assert by["f16"].ppl == pytest.approx(p.ppl, rel=1e-12)
    k = kquants.kl_divergence(by["q4_k_m"].path, ref, n_ctx=64, chunks=3, tokens=toks, quiet=True)
    assert by["q4_k_m"].kld == pytest.approx(k.kld[0], rel=1e-9)
    assert by["q4_k_m"].ppl == pytest.approx(k.ppl[0], rel=1e-12)
    # bits/weight: all tensor bytes over all weights of the file
    f = kquants.GGUFFile(by["q2_k"].path)
    n = sum(int(np.prod(t.shape)) for t in f.tensors)
    assert by["q2_k"].bits_per_weight == pytest.approx(8 * sum(t.nbytes for t in f.tensors) / n)


def test_outputs(result):
    md = open(result.outputs["markdown"], encoding="utf-8").read()
    assert md.count("\n| q") == 3 and "| f16 |" in md and "bits/weight" in md
    js = json.load(open(result.outputs["json"]))
    assert [r["type"] for r in js["rows"]] == TYPES and js["reference"] == "f16"
    pytest.importorskip("matplotlib")
    with open(result.outputs["png"], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_cli(hf, text, tmp_path, capsys):
    rc = cli.main(["sweep", str(hf), "--types", "q8_0,q4_0", "--text", str(text), "-o", str(tmp_path),
                   "-c", "64", "--chunks", "2", "-t", "1", "--pp", "16", "--tg", "2", "--no-plot", "--no-keep",
                   "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| q8_0 |" in out and "| q4_0 |" in out
    assert (tmp_path / "sweep.json").exists() and not (tmp_path / "sweep.png").exists()
    assert not list(tmp_path.glob("*.gguf"))


@pytest.mark.parametrize("types, match", [(["q4_k_m", "bogus"], "unknown preset 'bogus'"),
                                          (["q8_0", "q8_0"], "listed twice"), ([" "], "empty")])
def test_bad_types(hf, tmp_path, types, match):
    with pytest.raises(kquants.KQuantsError, match=match):
        kquants.sweep(hf, types, out_dir=tmp_path, quiet=True)


def test_missing_model(tmp_path):
    with pytest.raises(kquants.KQuantsError, match="no such model"):
        kquants.sweep(tmp_path / "nope", ["q8_0"], quiet=True)
