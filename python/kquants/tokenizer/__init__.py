"""Tokenizers built from GGUF tokenizer metadata, matching llama.cpp's token ids.

    tok = kquants.Tokenizer("model.gguf")            # works on vocab-only GGUFs
    ids = tok.encode("Hello world", add_bos=tok.add_bos)
    text = tok.decode(ids)

Vocabulary kinds (``tokenizer.ggml.model``):

* ``llama``: SentencePiece BPE, through the ``sentencepiece`` library (:mod:`.spm`);
* ``gpt2``: byte-level BPE with the pre-tokenizer named by ``tokenizer.ggml.pre``
  (:mod:`.bpe`, :mod:`.pretokenize`);
* ``bert``: WordPiece (:mod:`.wpm`).

``Tokenizer.from_metadata(dict)`` builds one from GGUF key/value pairs
(``tokenizer.ggml.tokens`` as a list of str, ``scores``/``token_type`` as
sequences of numbers, ``merges`` as a list of str, ...).
"""
from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from .._core import GGUFError, KQuantsError, KQuantsIOError
from .bpe import BPE
from .pretokenize import PreTokenizer, pre_type
from .spm import SPM
from .vocab import Attr, Vocab, parse_vocab
from .wpm import WPM

__all__ = ["Tokenizer", "read_gguf_metadata"]


def read_gguf_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``tokenizer.*`` and ``general.*`` key/value pairs of a GGUF file."""
    from ..gguf import GGUFFile

    with GGUFFile(path) as f:
        return {k: f.get(k) for k in f.fields if k.startswith(("tokenizer.", "general."))}


class Tokenizer:
    """Text <-> token ids for the vocabulary of a GGUF file, as llama.cpp tokenizes."""

    def __init__(self, gguf_path: str | os.PathLike):
        self._init(read_gguf_metadata(gguf_path), os.fspath(gguf_path))

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], name: str = "metadata") -> "Tokenizer":
        """Build from GGUF key/value pairs.

        Reads the ``tokenizer.ggml.*`` keys, and ``general.name`` /
        ``general.architecture`` for llama.cpp's per-model special-token rules.
        """
        self = cls.__new__(cls)
        self._init(dict(metadata), name)
        return self

    def _init(self, md: dict[str, Any], source: str) -> None:
        self.source = source
        try:
            v = parse_vocab(md)
            self._vocab: Vocab = v
            if v.kind == "spm":
                self._impl = SPM(v.tokens, v.scores, v.special["unk"], v.add_space_prefix)
            elif v.kind == "bpe":
                pre = PreTokenizer(pre_type(v.pre).regexes)
                self._impl = BPE(v.token_to_id, v.merges, pre, v.ignore_merges)
            else:
                self._impl = WPM(v.token_to_id, v.special["unk"], v.lowercase, v.strip_accents)
        except (ValueError, RuntimeError) as e:   # RuntimeError: sentencepiece rejecting the model
            raise KQuantsError(f"{source}: {e}") from None
        self._pieces: list[bytes] | None = None

    # --- properties ---

    @property
    def n_vocab(self) -> int:
        return len(self._vocab.tokens)

    @property
    def vocab_type(self) -> str:
        """'spm', 'bpe' or 'wpm'."""
        return self._vocab.kind

    @property
    def model(self) -> str:
        """tokenizer.ggml.model ('llama', 'gpt2', 'bert')."""
        return self._vocab.model

    @property
    def pre(self) -> str | None:
        """tokenizer.ggml.pre (the BPE pre-tokenizer name)."""
        return self._vocab.pre

    bos_id = property(lambda self: self._vocab.special["bos"], doc="BOS id, or None")
    eos_id = property(lambda self: self._vocab.special["eos"], doc="EOS id, or None")
    eot_id = property(lambda self: self._vocab.special["eot"], doc="end-of-turn id, or None")
    unk_id = property(lambda self: self._vocab.special["unk"], doc="unknown-token id, or None")
    sep_id = property(lambda self: self._vocab.special["sep"], doc="separator id, or None")
    pad_id = property(lambda self: self._vocab.special["pad"], doc="padding id, or None")
    add_bos = property(lambda self: self._vocab.add_bos,
                       doc="whether llama.cpp adds BOS to a prompt (tokenizer.ggml.add_bos_token)")
    add_eos = property(lambda self: self._vocab.add_eos,
                       doc="whether llama.cpp adds EOS to a prompt (tokenizer.ggml.add_eos_token)")

    @property
    def special_ids(self) -> dict[str, int | None]:
        """All special ids llama.cpp knows: bos, eos, eot, eom, unk, sep, pad, mask, fim_*."""
        return dict(self._vocab.special)

    @property
    def eog_ids(self) -> frozenset[int]:
        """Ids that end generation (EOS, EOT, ... as llama.cpp collects them)."""
        return self._vocab.eog_ids

    def is_eog(self, token_id: int) -> bool:
        return token_id in self._vocab.eog_ids

    def is_control(self, token_id: int) -> bool:
        return bool(self._vocab.attrs[self._check_id(token_id)] & Attr.CONTROL)

    def token_text(self, token_id: int) -> str:
        """The raw vocabulary text of a token (as stored in the GGUF)."""
        return self._vocab.tokens[self._check_id(token_id)]

    def token_score(self, token_id: int) -> float:
        return self._vocab.scores[self._check_id(token_id)]

    def text_to_id(self, text: str) -> int | None:
        """The id of a vocabulary text, or None."""
        return self._vocab.token_to_id.get(text)

    # --- encode ---

    def encode(self, text: str | bytes, add_bos: bool = False, add_eos: bool = False,
               parse_special: bool = False) -> list[int]:
        """Token ids of ``text``, as llama_tokenize.

        ``add_bos``/``add_eos`` prepend BOS / append EOS (for a WordPiece
        vocabulary without EOS, ``add_eos`` appends [SEP], as llama.cpp does);
        ``parse_special`` turns control-token texts such as ``<|im_end|>`` into
        their ids (user-defined tokens are always matched).
        """
        text = self._check_text(text)
        v = self._vocab
        out: list[int] = []
        if add_bos:
            if v.special["bos"] is None:
                raise KQuantsError(f"{self.source}: add_bos=True but the vocabulary has no BOS token")
            out.append(v.special["bos"])
        enc = self._impl.encode
        for frag in v.partition(text, parse_special):
            if isinstance(frag, int):
                out.append(frag)
            else:
                out.extend(enc(frag))
        if add_eos:
            eos = v.special["eos"]
            if eos is None and v.kind == "wpm":
                eos = v.special["sep"]
            if eos is None:
                raise KQuantsError(f"{self.source}: add_eos=True but the vocabulary has no EOS token")
            out.append(eos)
        return out

    def __call__(self, text: str | bytes, **kw) -> list[int]:
        return self.encode(text, **kw)

    def _check_text(self, text: str | bytes) -> str:
        if isinstance(text, (bytes, bytearray, memoryview)):
            try:
                return bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                raise KQuantsError(f"encode: text is not valid UTF-8: {e}") from None
        if not isinstance(text, str):
            raise KQuantsError(f"encode: text must be str or bytes, not {type(text).__name__}")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as e:
            raise KQuantsError(f"encode: text holds a lone surrogate: {e}") from None
        return text

    # --- decode ---

    def _check_id(self, token_id: int) -> int:
        try:
            i = int(token_id)
        except (TypeError, ValueError):
            raise KQuantsError(f"token id must be an integer, not {token_id!r}") from None
        if not 0 <= i < len(self._vocab.tokens):
            raise KQuantsError(f"token id {i} is out of range [0, {len(self._vocab.tokens)})")
        return i

    def _all_pieces(self) -> list[bytes]:
        if self._pieces is None:
            v = self._vocab
            self._pieces = [v.piece(i, True) for i in range(len(v.tokens))]
        return self._pieces

    def token_to_piece(self, token_id: int, special: bool = True) -> bytes:
        """Bytes of one token (may be part of a UTF-8 character).

        Control and unknown tokens render as their text with ``special``,
        as nothing without; unused tokens always as nothing.
        """
        i = self._check_id(token_id)
        if not special and self._vocab.attrs[i] & (Attr.CONTROL | Attr.UNKNOWN):
            return b""
        return self._all_pieces()[i]

    def decode_bytes(self, ids: Iterable[int], special: bool = False,
                     remove_special: bool = False) -> bytes:
        """Bytes of a token sequence, as llama_detokenize.

        ``special`` renders control tokens as their text; ``remove_special``
        drops a leading BOS / trailing EOS when the vocabulary adds them.
        SentencePiece vocabularies drop the leading space of the first token
        (not when ``remove_special`` removed a BOS before it, nor when that
        first token is a BOS rendered as nothing: llama.cpp keeps it), and llama.cpp's clean-up of " ," " ." " 's" ... applies where the
        vocabulary asks for it.
        """
        v = self._vocab
        ids = [self._check_id(t) for t in ids]
        remove_space = v.add_space_prefix
        if remove_special and v.add_bos and ids and ids[0] == v.special["bos"]:
            remove_space = False
            ids = ids[1:]
        if remove_special and v.add_eos and ids and ids[-1] == v.special["eos"]:
            ids = ids[:-1]
        pieces = self._all_pieces()
        if special:
            parts = [pieces[i] for i in ids]
        else:
            hide = Attr.CONTROL | Attr.UNKNOWN
            attrs = v.attrs
            parts = [b"" if attrs[i] & hide else pieces[i] for i in ids]
        return v.detokenize(parts, remove_space)

    def decode(self, ids: Iterable[int], special: bool = False, remove_special: bool = False,
               errors: str = "replace") -> str:
        """Text of a token sequence (see :meth:`decode_bytes`); bad UTF-8 per ``errors``."""
        return self.decode_bytes(ids, special, remove_special).decode("utf-8", errors)

    def __repr__(self) -> str:
        v = self._vocab
        return (f"Tokenizer({self.source!r}, model={v.model!r}, pre={v.pre!r}, "
                f"n_vocab={len(v.tokens)})")
