"""SentencePiece vocabularies (``tokenizer.ggml.model = "llama"``) through ``sentencepiece``.

llama.cpp's SPM tokenizer prefixes each text fragment with a space, replaces
every ' ' by U+2581 '▁', then runs score-driven BPE over the code points: the
adjacent pair whose concatenation is a token with the highest score merges
first (the leftmost on ties); a final symbol that is not a token becomes its
``<0xXX>`` byte tokens.  That is exactly sentencepiece's BPE model with byte
fallback, so we build a ``ModelProto`` from the GGUF vocabulary and let the
C++ library do the merging.  The normalizer is switched off entirely (no
dummy prefix, no whitespace handling, identity mapping): the space prefix and
escaping are done here, as llama.cpp does them.

Every token is a NORMAL piece (llama.cpp merges into any token text, control
tokens included), except the ``<0xXX>`` byte tokens (BYTE pieces, for byte
fallback) and one UNKNOWN piece that sentencepiece requires.  The protobuf
is written by hand (no ``protobuf`` dependency); field numbers are those of
sentencepiece_model.proto.
"""
from __future__ import annotations

import struct

import sentencepiece

from .._core import KQuantsError

__all__ = ["SPM", "build_model_proto"]

# SentencePiece.Type
_NORMAL, _UNKNOWN, _BYTE = 1, 2, 6
# TrainerSpec.ModelType
_MODEL_BPE = 2

_BYTE_PIECES = {f"<0x{b:02X}>": b for b in range(256)}


def _varint(v: int) -> bytes:
    v &= (1 << 64) - 1          # negative int32 values are sign-extended to 64 bits
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(field: int, wire: int) -> bytes:
    return _varint(field << 3 | wire)


def _f_varint(field: int, v: int) -> bytes:         # wire type 0
    return _key(field, 0) + _varint(v)


def _f_bytes(field: int, data: bytes) -> bytes:     # wire type 2 (string, bytes, message)
    return _key(field, 2) + _varint(len(data)) + data


def _f_float(field: int, v: float) -> bytes:        # wire type 5 (fixed32)
    return _key(field, 5) + struct.pack("<f", v)


def build_model_proto(pieces: list[tuple[str, float, int]], byte_fallback: bool) -> bytes:
    """Serialized sentencepiece ModelProto for BPE over ``(text, score, type)`` pieces."""
    unk_id = next(i for i, p in enumerate(pieces) if p[2] == _UNKNOWN)
    body = bytearray()
    for text, score, typ in pieces:
        # ModelProto.pieces (1): SentencePiece{piece (1), score (2), type (3)}
        body += _f_bytes(1, _f_bytes(1, text.encode("utf-8")) + _f_float(2, score) + _f_varint(3, typ))
    trainer = (_f_varint(3, _MODEL_BPE)               # model_type
               + _f_varint(4, len(pieces))            # vocab_size
               + _f_varint(35, int(byte_fallback))    # byte_fallback
               + _f_varint(40, unk_id)                # unk_id
               + _f_varint(41, -1)                    # bos_id: none (added by the caller)
               + _f_varint(42, -1)                    # eos_id: none
               + _f_varint(43, -1))                   # pad_id: none
    normalizer = (_f_bytes(1, b"identity")            # name
                  + _f_varint(3, 0)                   # add_dummy_prefix
                  + _f_varint(4, 0)                   # remove_extra_whitespaces
                  + _f_varint(5, 0))                  # escape_whitespaces
    body += _f_bytes(2, trainer) + _f_bytes(3, normalizer)
    return bytes(body)


class SPM:
    """Fragment -> token ids for a SentencePiece (llama) vocabulary."""

    def __init__(self, tokens: list[str], scores: list[float], unk_id: int | None,
                 add_space_prefix: bool = True):
        self.add_space_prefix = add_space_prefix
        self.n_vocab = len(tokens)
        byte_ids = [i for i, t in enumerate(tokens) if t in _BYTE_PIECES]
        byte_fallback = bool(byte_ids)
        types = [_NORMAL] * len(tokens)
        for i in byte_ids:
            types[i] = _BYTE
        pieces = [(t, float(s), ty) for t, s, ty in zip(tokens, scores, types)]
        if unk_id is not None and 0 <= unk_id < len(tokens) and types[unk_id] == _NORMAL:
            pieces[unk_id] = (tokens[unk_id], pieces[unk_id][1], _UNKNOWN)
        else:
            # sentencepiece needs an UNKNOWN piece; this one lies past the
            # vocabulary and is only produced for a character that neither a
            # token nor a byte token covers (llama.cpp fails there).
            pieces.append(("\u2581<kquants-unk>\u2581", 0.0, _UNKNOWN))
        self.unk_id = next(i for i, p in enumerate(pieces) if p[2] == _UNKNOWN)
        self._unk_outside = self.unk_id >= len(tokens)
        self._sp = sentencepiece.SentencePieceProcessor()
        self._sp.LoadFromSerializedProto(build_model_proto(pieces, byte_fallback))

    def encode(self, text: str) -> list[int]:
        """Token ids of one text fragment (space prefix and '▁' escaping included)."""
        if self.add_space_prefix:
            text = " " + text
        text = text.replace(" ", "\u2581")
        ids = self._sp.EncodeAsIds(text)
        if self._unk_outside and self.unk_id in ids:
            raise KQuantsError("text holds a character that neither a token nor a byte token of "
                               "this SentencePiece vocabulary covers")
        return ids
