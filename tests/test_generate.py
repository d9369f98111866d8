"""Model API on the real SmolLM2 GGUF: tokenize/detokenize, generation
(greedy, seeded sampling, streaming) and the CLI subcommands."""
from __future__ import annotations

import numpy as np
import pytest

import kquants
from kquants.cli import main


@pytest.fixture(scope="module")
def model(smollm2):
    return kquants.Model(smollm2, threads=2, n_ctx=256)


def test_tokenize_roundtrip(model):
    ids = model.tokenize("The capital of France is")
    assert ids == [504, 3575, 282, 4649, 314]  # llama.cpp's ids (no BOS: add_bos_token is false)
    assert model.detokenize(ids) == "The capital of France is"
    assert model.add_bos is False and model.arch == "llama" and model.n_vocab == 49152


def test_greedy_generation(model):
    out = model.generate("The capital of France is", max_tokens=4, temperature=0)
    assert out.startswith(" Paris")
    pieces = list(model.generate("The capital of France is", max_tokens=4, temperature=0, stream=True))
    assert "".join(pieces) == out and len(pieces) >= 2


def test_seeded_sampling_is_reproducible(model):
    a = model.generate("Once upon a time", max_tokens=8, temperature=0.9, seed=7)
    b = model.generate("Once upon a time", max_tokens=8, temperature=0.9, seed=7)
    assert a == b and len(a) > 0


def test_logits_last_row_matches_eval(model):
    ids = model.tokenize("Hello world")
    full = model.logits(ids)
    model.reset()
    last = model.eval(ids)
    np.testing.assert_array_equal(full[-1], last)


def test_generate_errors(model):
    with pytest.raises(kquants.KQuantsError, match="exceeds the context size"):
        model.generate("hi", max_tokens=1000)
    with pytest.raises(kquants.KQuantsError, match="empty"):
        model.generate([], max_tokens=2)


def test_cli_generate_and_perplexity(smollm2, capsys):
    assert main(["generate", str(smollm2), "The capital of France is", "-n", "3", "--temperature", "0",
                 "-t", "2"]) == 0
    assert "Paris" in capsys.readouterr().out
    assert main(["perplexity", str(smollm2), "-c", "64", "--chunks", "2", "-q"]) == 0
    assert "PPL = " in capsys.readouterr().out
    assert main(["generate", str(smollm2), "x", "--ctx", "100000"]) == 1
    assert "longer than the model's context length 8192" in capsys.readouterr().err
