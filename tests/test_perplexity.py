"""kquants.perplexity / kl_divergence follow llama-perplexity's procedure:
checked against a NumPy re-implementation of that procedure on tiny models."""
from __future__ import annotations

import math

import numpy as np
import pytest

import kquants
from kquants.model import Model

from llama_ref import write_tiny_gguf

N_VOCAB = 96


class StandInTokenizer:
    """Minimal tokenizer for the tiny models (one id per character)."""

    def __init__(self, add_bos):
        self.add_bos = add_bos

    def encode(self, text, add_bos=False):
        return ([1] if add_bos else []) + [3 + ord(c) % (N_VOCAB - 3) for c in text]

    def decode(self, ids):
        return "".join(chr(97 + i % 26) for i in ids)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("ppl") / "tiny.gguf"
    write_tiny_gguf(path, n_ctx=64, n_layer=1, n_embd=32, n_head=2, n_head_kv=1, n_ff=64, tied=False, wtype="Q8_0")
    return path


def expected_ppl(model, tokens, n_ctx, bos=None):
    """llama-perplexity's perplexity() in NumPy, from the native logits."""
    n_chunk = len(tokens) // n_ctx
    first = n_ctx // 2
    nll = []
    for i in range(n_chunk):
        ids = np.array(tokens[i * n_ctx:(i + 1) * n_ctx])
        if bos is not None:
            ids[0] = bos
        lg = model.logits(ids)[first:n_ctx - 1]
        mx = lg.max(1, keepdims=True)
        lse = np.log(np.exp(lg - mx).astype(np.float64).sum(1))
        nll.append(-((lg[np.arange(len(lg)), ids[first + 1:]] - mx[:, 0]) - lse))
    nll = np.concatenate(nll)
    mean, var = nll.mean(), (nll * nll).mean() - nll.mean() ** 2
    ppl = math.exp(mean)
    return ppl, ppl * math.sqrt(var / (len(nll) - 1)), n_chunk, nll


@pytest.mark.parametrize("add_bos", [False, True])
def test_perplexity_procedure(tiny, add_bos):
    m = Model(tiny, threads=2, tokenizer=StandInTokenizer(add_bos))
    tokens = list(np.random.default_rng(0).integers(3, N_VOCAB, 16 * 3 + 7))
    r = kquants.perplexity(m, tokens=tokens, n_ctx=16, quiet=True)
    ppl, se, n_chunk, nll = expected_ppl(m, tokens, 16, bos=1 if add_bos else None)
    assert r.n_chunks == n_chunk == 3
    assert r.n_scored == 3 * (16 - 8 - 1) == len(r.nll)
    np.testing.assert_allclose(r.nll, nll, rtol=1e-7, atol=1e-7)  # libm vs NumPy expf
    assert r.ppl == pytest.approx(ppl, rel=1e-7)
    assert r.stderr == pytest.approx(se, rel=1e-7)
    assert len(r.chunk_ppl) == 3 and r.chunk_ppl[-1] == pytest.approx(r.ppl)
    assert r.chunk_ppl[0] == pytest.approx(math.exp(nll[:7].mean()))
    # chunks= caps the count
    r2 = kquants.perplexity(m, tokens=tokens, n_ctx=16, chunks=2, quiet=True)
    assert r2.n_chunks == 2 and r2.chunk_ppl == pytest.approx(r.chunk_ppl[:2])


def test_perplexity_from_text_adds_bos(tiny):
    m = Model(tiny, tokenizer=StandInTokenizer(True))
    text = "the quick brown fox jumps over the lazy dog " * 2
    r = kquants.perplexity(m, text, n_ctx=32, quiet=True)
    toks = m.tokenize(text)
    assert toks[0] == 1 and r.n_tokens == len(toks)
    assert r.ppl == pytest.approx(expected_ppl(m, toks, 32, bos=1)[0], rel=1e-7)


def test_perplexity_errors(tiny, tmp_path):
    m = Model(tiny, tokenizer=StandInTokenizer(False))
    with pytest.raises(kquants.KQuantsError, match="needs at least 64"):
        kquants.perplexity(m, "x" * 63, n_ctx=32, quiet=True)
    with pytest.raises(kquants.KQuantsError, match="empty"):
        kquants.perplexity(m, "", n_ctx=32, quiet=True)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    with pytest.raises(kquants.KQuantsError, match="empty.txt.*empty"):
        kquants.perplexity(m, empty, n_ctx=32, quiet=True)
    with pytest.raises(kquants.KQuantsError, match="longer than the model's context length 64"):
        kquants.perplexity(m, "x" * 1000, n_ctx=128, quiet=True)
    with pytest.raises(kquants.KQuantsError, match="outside the vocabulary"):
        kquants.perplexity(m, tokens=[5] * 63 + [N_VOCAB], n_ctx=32, quiet=True)
    small = Model(tiny, n_ctx=16, tokenizer=StandInTokenizer(False))
    with pytest.raises(kquants.KQuantsError, match="n_ctx=16"):
        kquants.perplexity(small, "x" * 100, n_ctx=32, quiet=True)


def test_reads_text_file(tiny, tmp_path):
    m = Model(tiny, tokenizer=StandInTokenizer(False))
    f = tmp_path / "wiki.test.raw"
    text = " = Title = \n some text here and there \n" * 4
    f.write_text(text)
    a = kquants.perplexity(m, str(f), n_ctx=32, quiet=True)
    b = kquants.perplexity(m, text, n_ctx=32, quiet=True)
    assert a.ppl == b.ppl


def test_default_text_is_packaged():
    from kquants.perplexity import default_text_path
    import os
    p = default_text_path()
    assert os.path.getsize(p) > 200_000
    assert open(p, encoding="utf-8").read().startswith("CHAPTER 1. Loomings.")


def exact_kld(lq, lb):
    def lsm(x):
        x = x.astype(np.float64)
        x = x - x.max(1, keepdims=True)
        return x - np.log(np.exp(x).sum(1, keepdims=True))
    a, b = lsm(lq), lsm(lb)
    return (np.exp(b) * (b - a)).sum(1)


def test_kl_divergence(tiny, tmp_path):
    base_path = tmp_path / "base.gguf"
    # Same seed -> same random weights; base in F32, model quantized to Q8_0.
    write_tiny_gguf(base_path, n_ctx=64, n_layer=1, n_embd=32, n_head=2, n_head_kv=1, n_ff=64, tied=False, wtype="F32")
    base = Model(base_path, tokenizer=StandInTokenizer(False))
    m = Model(tiny, tokenizer=StandInTokenizer(False))
    tokens = list(np.random.default_rng(3).integers(3, N_VOCAB, 64))
    k = kquants.kl_divergence(m, base, tokens=tokens, n_ctx=32, quiet=True)
    assert k.n_chunks == 2 and k.n_scored == 2 * 15
    want, same = [], []
    for i in range(2):
        ids = np.array(tokens[i * 32:(i + 1) * 32])
        lq, lb = m.logits(ids)[16:31], base.logits(ids)[16:31]
        want.append(exact_kld(lq, lb))
        same.append(lq.argmax(1) == lb.argmax(1))
    want = np.concatenate(want)
    # llama.cpp's 16-bit base log-probs cost a little precision.
    assert k.kld[0] == pytest.approx(want.mean(), rel=2e-2, abs=1e-5)
    assert k.same_top[0] == pytest.approx(np.concatenate(same).mean())
    p = kquants.perplexity(m, tokens=tokens, n_ctx=32, quiet=True)
    pb = kquants.perplexity(base, tokens=tokens, n_ctx=32, quiet=True)
    assert k.ppl[0] == pytest.approx(p.ppl, rel=1e-5)
    assert k.ppl_base[0] == pytest.approx(pb.ppl, rel=1e-3)
    assert k.kld_min <= k.kld_median <= k.kld_max
    assert "Mean    KLD" in k.report() and "Same top p" in k.report()
    # A model against itself.
    s = kquants.kl_divergence(base, base, tokens=tokens, n_ctx=32, quiet=True)
    assert s.same_top[0] == 1.0 and abs(s.kld[0]) < 1e-4 and abs(s.dp_mean[0]) < 1e-3


def test_smollm2_short_perplexity(smollm2):
    m = Model(smollm2, threads=2, n_ctx=64)
    r = kquants.perplexity(m, n_ctx=64, chunks=2, quiet=True)   # packaged text
    assert r.n_chunks == 2 and r.n_tokens > 50_000
    assert 5 < r.ppl < 500 and r.stderr > 0
