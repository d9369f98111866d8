"""Malformed GGUF input: each case raises a kquants error naming the file and the fault."""
from __future__ import annotations

import os
import struct

import pytest

import gguf_craft as c
import kquants

GOOD_KVS = [c.kv_str("general.architecture", "llama")]
F32_ROW = struct.pack("<32f", *range(32))


def write(tmp_path, data: bytes, name: str = "bad.gguf"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def expect_gguf_error(tmp_path, data: bytes, *patterns: str):
    p = write(tmp_path, data)
    with pytest.raises(kquants.GGUFError) as ei:
        kquants.GGUFFile(p)
    msg = str(ei.value)
    assert str(p) in msg, msg
    for pat in patterns:
        assert pat in msg, f"{pat!r} not in {msg!r}"
    return msg


def test_crafted_valid_file_loads(tmp_path):
    # The baseline the cases below corrupt.
    with kquants.GGUFFile(write(tmp_path, c.valid_small())) as f:
        assert f.metadata == {"general.architecture": "llama", "x": 7}
        assert [t.name for t in f.tensors] == ["a", "b"]
        assert f.dequantize("a").tolist() == [list(map(float, range(32))), list(map(float, range(32, 64)))]


@pytest.mark.parametrize("cut", [0, 3, 10, 23, 30, 60, 150])
def test_truncated_header_or_metadata(tmp_path, cut):
    data = c.valid_small()
    msg = expect_gguf_error(tmp_path, data[:cut], "truncated")
    assert "bytes" in msg


def test_truncated_tensor_data(tmp_path):
    data = c.valid_small()
    expect_gguf_error(tmp_path, data[:-40], "tensor 'b'", "past the end of the file")


def test_wrong_magic(tmp_path):
    expect_gguf_error(tmp_path, c.gguf(GOOD_KVS, magic=b"GGML"), "not a GGUF file", "'GGML'")


@pytest.mark.parametrize("version", [1, 0, 4, 0xFFFFFFFF])
def test_unsupported_version(tmp_path, version):
    msg = expect_gguf_error(tmp_path, c.gguf(GOOD_KVS, version=version), "unsupported GGUF version", str(version))
    if version == 1:
        assert "obsolete" in msg


def test_big_endian_is_named(tmp_path):
    expect_gguf_error(tmp_path, c.gguf(GOOD_KVS, version=0x03000000), "big-endian")


@pytest.mark.parametrize("count", [1000, 2**40, 2**64 - 1])
def test_metadata_count_beyond_file(tmp_path, count):
    expect_gguf_error(tmp_path, c.gguf(GOOD_KVS, n_kv=count), "metadata count", str(count))


def test_metadata_count_one_too_many(tmp_path):
    # Fits the size bound, but the entries run out: the last one is truncated.
    data = c.header(0, 2) + GOOD_KVS[0]
    expect_gguf_error(tmp_path, data, "truncated", "key of metadata entry 1")


@pytest.mark.parametrize("count", [10**6, 2**63, 2**64 - 1])
def test_tensor_count_beyond_file(tmp_path, count):
    expect_gguf_error(tmp_path, c.gguf(GOOD_KVS, n_tensors=count), "tensor count", str(count))


@pytest.mark.parametrize("length", [1000, 2**63, 2**64 - 1])
def test_string_length_beyond_file(tmp_path, length):
    bad = c.string("key") + c.u32(c.STRING) + c.u64(length) + b"abc"
    expect_gguf_error(tmp_path, c.gguf([bad]), "string length", str(length), "'key'")


def test_key_length_beyond_file(tmp_path):
    bad = c.u64(2**64 - 8) + b"k" + c.u32(c.U8) + b"\0"
    expect_gguf_error(tmp_path, c.gguf([bad]), "string length", "key of metadata entry 0")


@pytest.mark.parametrize("elem,count", [(c.U8, 10**6), (c.U32, 2**62), (c.U64, 2**61 + 1),
                                        (c.STRING, 2**60), (c.ARRAY, 2**64 - 1)])
def test_array_length_beyond_file(tmp_path, elem, count):
    bad = c.kv("arr", c.ARRAY, c.array(elem, [], count=count))
    expect_gguf_error(tmp_path, c.gguf([bad]), "array length", str(count), "'arr'")


def test_string_array_element_beyond_file(tmp_path):
    bad = c.kv("toks", c.ARRAY, c.array(c.STRING, [c.string("a"), c.string("bc", length=2**50)]))
    expect_gguf_error(tmp_path, c.gguf([bad]), "string length", "element 1", "'toks'")


def test_unknown_value_type(tmp_path):
    expect_gguf_error(tmp_path, c.gguf([c.kv("k", 13, b"\0" * 8)]), "unknown value type id 13", "'k'")


def test_unknown_array_element_type(tmp_path):
    expect_gguf_error(tmp_path, c.gguf([c.kv("k", c.ARRAY, c.array(99, []))]), "unknown element type id 99")


def test_nesting_too_deep(tmp_path):
    payload = c.array(c.U8, [])
    for _ in range(20):
        payload = c.array(c.ARRAY, [payload])
    expect_gguf_error(tmp_path, c.gguf([c.kv("deep", c.ARRAY, payload)]), "nested deeper")


def test_duplicate_key(tmp_path):
    expect_gguf_error(tmp_path, c.gguf([c.kv_u32("k", 1), c.kv_u32("k", 2)]), "duplicate metadata key 'k'")


def test_key_not_utf8(tmp_path):
    expect_gguf_error(tmp_path, c.gguf([c.kv_u32(b"\xff\xfe", 1)]), "not valid UTF-8")


def test_tensor_data_past_end(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [32], c.T_F32, 0)], F32_ROW[:64])
    expect_gguf_error(tmp_path, data, "tensor 'w'", "past the end of the file")


def test_tensor_offset_beyond_end(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [32], c.T_F32, 2**64 - 32)], F32_ROW)
    expect_gguf_error(tmp_path, data, "tensor 'w'", "past the end of the file")


def test_unknown_tensor_type(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [32], 99, 0)], F32_ROW)
    expect_gguf_error(tmp_path, data, "tensor 'w'", "unknown ggml type id 99")


def test_duplicate_tensor_name(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [32], c.T_F32, 0), c.tensor_info("w", [32], c.T_F32, 128)],
                  F32_ROW * 2)
    expect_gguf_error(tmp_path, data, "duplicate tensor name 'w'")


def test_misaligned_tensor_offset(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [8], c.T_F32, 4)], F32_ROW)
    expect_gguf_error(tmp_path, data, "tensor 'w'", "offset 4", "alignment 32")


def test_misaligned_with_custom_alignment(tmp_path):
    kvs = GOOD_KVS + [c.kv_u32("general.alignment", 64)]
    data = c.gguf(kvs, [c.tensor_info("w", [8], c.T_F32, 32)], F32_ROW * 2, alignment=64)
    expect_gguf_error(tmp_path, data, "tensor 'w'", "offset 32", "alignment 64")


@pytest.mark.parametrize("alignment", [0, 3, 48, 2**31 + 1])
def test_alignment_not_power_of_two(tmp_path, alignment):
    kvs = GOOD_KVS + [c.kv_u32("general.alignment", alignment)]
    expect_gguf_error(tmp_path, c.gguf(kvs), "general.alignment", "not a power of two")


def test_alignment_wrong_type(tmp_path):
    kvs = GOOD_KVS + [c.kv("general.alignment", c.U64, c.u64(32))]
    expect_gguf_error(tmp_path, c.gguf(kvs), "general.alignment must be UINT32")


def test_element_count_overflows_int64(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [2**32, 2**32], c.T_F32, 0)])
    expect_gguf_error(tmp_path, data, "tensor 'w'", "overflows int64")


def test_dimension_beyond_int64(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [2**63], c.T_F32, 0)])
    expect_gguf_error(tmp_path, data, "tensor 'w'", "beyond int64")


def test_too_many_dims(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [1, 1, 1, 1, 32], c.T_F32, 0)])
    expect_gguf_error(tmp_path, data, "tensor 'w'", "5 dimensions")


def test_row_not_multiple_of_block(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [48, 2], c.T_Q8_0, 0)], b"\0" * 128)
    expect_gguf_error(tmp_path, data, "tensor 'w'", "row length 48", "block size 32", "Q8_0")


def test_byte_size_past_end_for_huge_shape(tmp_path):
    # 2^62 elements of F32: the count fits int64, the byte size does not fit the file.
    data = c.gguf(GOOD_KVS, [c.tensor_info("w", [2**31, 2**31], c.T_F32, 0)], F32_ROW)
    with pytest.raises(kquants.GGUFError, match="tensor 'w'"):
        kquants.GGUFFile(write(tmp_path, data))


def test_tensor_name_not_utf8(tmp_path):
    data = c.gguf(GOOD_KVS, [c.tensor_info(b"w\xc0\x80", [32], c.T_F32, 0)], F32_ROW)
    expect_gguf_error(tmp_path, data, "name of tensor 0", "not valid UTF-8")


def test_missing_file_is_oserror(tmp_path):
    p = tmp_path / "missing.gguf"
    with pytest.raises(kquants.KQuantsIOError) as ei:
        kquants.GGUFFile(p)
    assert isinstance(ei.value, OSError)
    assert str(p) in str(ei.value) and "No such file" in str(ei.value)


def test_nul_in_path_is_oserror(tmp_path):
    p = write(tmp_path, c.valid_small())
    with pytest.raises(kquants.KQuantsIOError, match="NUL"):
        kquants.GGUFFile(str(p) + "\0.other")
    with pytest.raises(kquants.KQuantsIOError, match="NUL"):
        kquants.GGUFWriter(str(tmp_path / "out.gguf") + "\0x")


def test_directory_is_oserror(tmp_path):
    with pytest.raises(kquants.KQuantsIOError, match="not a regular file"):
        kquants.GGUFFile(tmp_path)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_file_is_oserror(tmp_path):
    p = write(tmp_path, c.valid_small())
    p.chmod(0)
    with pytest.raises(kquants.KQuantsIOError, match="cannot open"):
        kquants.GGUFFile(p)


def test_errors_are_catchable_as_kquants_errors(tmp_path):
    # GGUFError is a KQuantsError is a ValueError.
    p = write(tmp_path, b"nope")
    with pytest.raises(ValueError):
        kquants.GGUFFile(p)


def test_invalid_utf8_string_value_comes_back_as_bytes(tmp_path):
    # Not an error: the metadata dict stays usable.
    data = c.gguf([c.kv_str("s", b"ok\xff"), c.kv("a", c.ARRAY, c.array(c.STRING, [c.string(b"\xfe"), c.string("x")]))])
    with kquants.GGUFFile(write(tmp_path, data)) as f:
        assert f.metadata == {"s": b"ok\xff", "a": [b"\xfe", "x"]}
