"""GGUFWriter: round trips with gguf-py in both directions, streaming, atomic replace, misuse."""
from __future__ import annotations

import gc
import os

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")

import kquants  # noqa: E402
from kquants import GGUFValueType as VT  # noqa: E402

RNG = np.random.default_rng(1234)

# (key, value, type, sub_type): every scalar type at its extremes, strings,
# arrays of each element type, nested arrays.
METADATA = [
    ("t.u8", 255, VT.UINT8, None),
    ("t.i8", -128, VT.INT8, None),
    ("t.u16", 65535, VT.UINT16, None),
    ("t.i16", -32768, VT.INT16, None),
    ("t.u32", 2**32 - 1, VT.UINT32, None),
    ("t.i32", -2**31, VT.INT32, None),
    ("t.u64", 2**64 - 1, VT.UINT64, None),
    ("t.i64", -2**63, VT.INT64, None),
    ("t.f32", 0.1, VT.FLOAT32, None),
    ("t.f64", -1e-300, VT.FLOAT64, None),
    ("t.bool_t", True, VT.BOOL, None),
    ("t.bool_f", False, VT.BOOL, None),
    ("t.str", "héllo wörld ✓ \n\t", VT.STRING, None),
    ("t.str_empty", "", VT.STRING, None),
    ("t.arr_u8", [0, 1, 255], VT.ARRAY, VT.UINT8),
    ("t.arr_i8", [-1, 127], VT.ARRAY, VT.INT8),
    ("t.arr_u16", [1, 65535], VT.ARRAY, VT.UINT16),
    ("t.arr_i16", [-5, 5], VT.ARRAY, VT.INT16),
    ("t.arr_u32", [7, 2**32 - 1], VT.ARRAY, VT.UINT32),
    ("t.arr_i32", list(range(-50, 50)), VT.ARRAY, VT.INT32),
    ("t.arr_u64", [2**64 - 1, 0], VT.ARRAY, VT.UINT64),
    ("t.arr_i64", [-2**63, 2**63 - 1], VT.ARRAY, VT.INT64),
    ("t.arr_f32", [0.5, -1.25, 3e38], VT.ARRAY, VT.FLOAT32),
    ("t.arr_f64", [1e-310, 2.5], VT.ARRAY, VT.FLOAT64),
    ("t.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL),
    ("t.arr_str", ["a", "", "ü", "<|endoftext|>"], VT.ARRAY, VT.STRING),
    ("t.nested", [[1, 2, 3], [4], [5, 6]], VT.ARRAY, VT.ARRAY),
    ("t.nested_str", [["x", "y"], ["z"]], VT.ARRAY, VT.ARRAY),
]


def expected_value(value, vtype, sub):
    """What a reader gives back: float32 values rounded through float32."""
    if vtype == VT.FLOAT32:
        return float(np.float32(value))
    if sub == VT.FLOAT32:
        return [float(np.float32(v)) for v in value]
    return value


def make_tensors():
    """(name, numpy shape, type, raw bytes): floats and quantized bytes of several types."""
    out = []
    x = RNG.standard_normal((3, 64), dtype=np.float32)
    out.append(("f32", (3, 64), "F32", x.tobytes()))
    out.append(("f16", (2, 5), "F16", RNG.standard_normal((2, 5)).astype(np.float16).tobytes()))
    out.append(("vec", (7,), "F32", np.arange(7, dtype=np.float32).tobytes()))
    for name, tname, shape in [("q8", "Q8_0", (4, 64)), ("q4k", "Q4_K", (2, 256)), ("q6k", "Q6_K", (1, 2, 256)),
                               ("q5_0", "Q5_0", (3, 32)), ("q4_1", "Q4_1", (2, 3, 2, 32))]:
        info = kquants.type_info(tname)
        rows = int(np.prod(shape[:-1]))
        nbytes = rows * info.row_bytes(shape[-1])
        out.append((name, shape, tname, RNG.integers(0, 256, nbytes, dtype=np.uint8).tobytes()))
    return out


def write_ours(path, tensors, alignment=None, chunk=None):
    with kquants.GGUFWriter(path, arch="testarch", alignment=alignment) as w:
        for key, value, vtype, sub in METADATA:
            w.add_value(key, value, vtype, sub)
        for name, shape, tname, raw in tensors:
            assert w.add_tensor_info(name, shape, tname, nbytes=len(raw)) == len(raw)
        for name, shape, tname, raw in tensors:
            assert w.current_tensor == name
            if chunk:
                for i in range(0, len(raw), chunk):
                    w.write_tensor_data(raw[i:i + chunk])
            else:
                w.write_tensor_data(np.frombuffer(raw, np.uint8))
        assert w.current_tensor == ""
    assert w.finished


@pytest.mark.parametrize("alignment,chunk", [(None, None), (64, 7), (1, None), (4096, 100)])
def test_ours_reads_back_in_gguf_py(tmp_path, alignment, chunk):
    p = tmp_path / "ours.gguf"
    tensors = make_tensors()
    write_ours(p, tensors, alignment, chunk)
    ref = gguf.GGUFReader(p)
    assert ref.alignment == (alignment or 32)
    fields = {k: v for k, v in ref.fields.items() if not k.startswith("GGUF.")}
    expect_keys = ["general.architecture"] + (["general.alignment"] if alignment not in (None, 32) else []) \
        + [m[0] for m in METADATA]
    assert list(fields) == expect_keys
    assert fields["general.architecture"].contents() == "testarch"
    for key, value, vtype, sub in METADATA:
        rf = fields[key]
        assert rf.types[0].name == vtype.name, key
        exp = expected_value(value, vtype, sub)
        if sub == VT.ARRAY:
            assert rf.types[1].name == "ARRAY"
            exp = [y for x in value for y in x]  # gguf-py flattens nested arrays
        elif sub is not None:
            assert rf.types[1].name == sub.name, key
        assert rf.contents() == exp, key
    assert [t.name for t in ref.tensors] == [t[0] for t in tensors]
    for rt, (name, shape, tname, raw) in zip(ref.tensors, tensors):
        assert rt.tensor_type.name == tname
        assert tuple(reversed(rt.shape.tolist())) == shape
        assert rt.data_offset % ref.alignment == 0
        assert np.ascontiguousarray(rt.data).view(np.uint8).tobytes() == raw, name
    # And in ours, including nested arrays unflattened.
    with kquants.GGUFFile(p) as f:
        for key, value, vtype, sub in METADATA:
            assert f.metadata[key] == expected_value(value, vtype, sub), key
            assert f.fields[key].type == vtype and f.fields[key].sub_type == sub
        for name, shape, tname, raw in tensors:
            assert f.tensor(name).shape == shape
            assert f.tensor_data(name).tobytes() == raw
        assert np.array_equal(f.dequantize("f32"), np.frombuffer(tensors[0][3], np.float32).reshape(3, 64))
    gc.collect()


def test_gguf_py_file_reads_in_ours(tmp_path):
    p = tmp_path / "theirs.gguf"
    w = gguf.GGUFWriter(p, "theirarch")
    for key, value, vtype, sub in METADATA:
        if sub == VT.ARRAY or (vtype == VT.STRING and value == ""):
            continue  # gguf-py infers inner types itself and drops empty strings
        w.add_key_value(key, value, gguf.GGUFValueType(int(vtype)),
                        sub_type=None if sub is None else gguf.GGUFValueType(int(sub)))
    w.add_array("t.nested", [[1, 2, 3], [4], [5, 6]])  # inner INT32, inferred
    tensors = make_tensors()
    for name, shape, tname, raw in tensors:
        arr = np.frombuffer(raw, np.uint8)
        qtype = gguf.GGMLQuantizationType[tname]
        if tname in ("F32", "F16"):
            w.add_tensor(name, arr.view(np.float32 if tname == "F32" else np.float16).reshape(shape))
        else:
            w.add_tensor(name, arr.reshape(*shape[:-1], -1), raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    ref = gguf.GGUFReader(p)
    with kquants.GGUFFile(p) as f:
        assert f.metadata["general.architecture"] == "theirarch"
        assert f.data_offset == ref.data_offset
        for key, value, vtype, sub in METADATA:
            if key in f.metadata and key != "t.nested":
                assert f.metadata[key] == expected_value(value, vtype, sub), key
                assert f.fields[key].type == vtype
        assert f.metadata["t.nested"] == [[1, 2, 3], [4], [5, 6]]
        for rt, (name, shape, tname, raw) in zip(ref.tensors, tensors):
            t = f.tensor(name)
            assert (t.type.name, t.shape, t.offset, t.nbytes) == (tname, shape, rt.data_offset, len(raw))
            assert f.tensor_data(name).tobytes() == raw
    del ref
    gc.collect()


def test_copy_of_real_model_is_byte_identical(tmp_path, smollm2):
    """Rewriting SmolLM2 (metadata copied verbatim, tensors streamed) reproduces the file exactly."""
    out = tmp_path / "copy.gguf"
    with kquants.GGUFFile(smollm2) as src:
        with kquants.GGUFWriter(out, inputs=[smollm2]) as w:
            w.copy_metadata(src)
            for t in src.tensors:
                w.add_tensor_info(t.name, t.shape, t.type, t.nbytes)
            for t in src.tensors:
                data = src.tensor_data(t.name)
                for i in range(0, t.nbytes, 1 << 22):  # 4 MiB pieces
                    w.write_tensor_data(data[i:i + (1 << 22)])
    a, b = np.memmap(smollm2, np.uint8, "r"), np.memmap(out, np.uint8, "r")
    assert a.shape == b.shape and np.array_equal(a, b)
    del a, b
    gc.collect()


def test_typed_metadata_copy_and_inference(tmp_path):
    src_p, dst_p = tmp_path / "src.gguf", tmp_path / "dst.gguf"
    with kquants.GGUFWriter(src_p) as w:
        w.add_value("i", 5)
        w.add_value("big", 2**40)
        w.add_value("huge", 2**63)
        w.add_value("f", 1.5)
        w.add_value("b", np.bool_(True))
        w.add_value("npf", np.float64(2.5))
        w.add_value("npu16", np.uint16(9))
        w.add_value("s", "x")
        w.add_value("raw", b"\xff\x00")  # bytes -> STRING, kept as-is
        w.add_value("mixed", [1, 2.5])
        w.add_value("arr_np", np.array([1, 2], np.int16))
        w.add_value("arr_bytes", bytearray(b"\x01\x02"))
        w.add_array("empty", [], sub_type=VT.FLOAT32)
    with kquants.GGUFFile(src_p) as f:
        types = {k: (fd.type.name, fd.sub_type.name if fd.sub_type is not None else None) for k, fd in f.fields.items()}
        assert types == {"i": ("INT32", None), "big": ("INT64", None), "huge": ("UINT64", None),
                         "f": ("FLOAT32", None), "b": ("BOOL", None), "npf": ("FLOAT64", None),
                         "npu16": ("UINT16", None), "s": ("STRING", None), "raw": ("STRING", None),
                         "mixed": ("ARRAY", "FLOAT32"), "arr_np": ("ARRAY", "INT16"),
                         "arr_bytes": ("ARRAY", "UINT8"), "empty": ("ARRAY", "FLOAT32")}
        assert f.metadata["raw"] == b"\xff\x00" and f.metadata["empty"] == []
        with kquants.GGUFWriter(dst_p, inputs=[src_p]) as w:
            w.copy_metadata(f, skip=["s"])
            w.copy_field(f, "s", as_key="s2")
        with kquants.GGUFFile(dst_p) as g:
            want = dict(f.metadata)
            want["s2"] = want.pop("s")
            assert g.metadata == want
            assert {k: g.fields[k].type for k in g.fields} == {
                ("s2" if k == "s" else k): f.fields[k].type for k in f.fields}


@pytest.mark.parametrize("call,match", [
    (lambda w: w.add_uint8("k", 256), "out of range"),
    (lambda w: w.add_int8("k", -129), "out of range"),
    (lambda w: w.add_uint64("k", -1), "out of range"),
    (lambda w: w.add_uint64("k", 2**64), "out of range"),
    (lambda w: w.add_int32("k", 1.5), "integers"),
    (lambda w: w.add_uint32("k", True), "integers"),
    (lambda w: w.add_bool("k", 1), "bool"),
    (lambda w: w.add_float32("k", "x"), "numbers"),
    (lambda w: w.add_string("k", 5), "str or bytes"),
    (lambda w: w.add_string("k", "\ud800"), "UTF-8"),
    (lambda w: w.add_array("k", []), "empty array"),
    (lambda w: w.add_array("k", [1, "a"]), "mixes"),
    (lambda w: w.add_array("k", 5), "ARRAY needs"),
    (lambda w: w.add_value("k", object()), "cannot store"),
    (lambda w: w.add_value("k", [1, 2], VT.UINT32), "single value"),
    (lambda w: w.add_uint32("general.alignment", 24), "power of two"),
    (lambda w: w.add_uint16("general.alignment", 32), "UINT32"),
    (lambda w: w.add_tensor_info("t", (2, 33), "q8_0"), "block size 32"),
    (lambda w: w.add_tensor_info("t", (1, 1, 1, 1, 32), "f32"), "5 dimensions"),
    (lambda w: w.add_tensor_info("t", (-1, 32), "f32"), "negative"),
    (lambda w: w.add_tensor_info("t", (2, 32), "f32", nbytes=100), "nbytes 100"),
    (lambda w: w.add_tensor_info("t", (2, 32), "q9_9"), "unknown type"),
])
def test_bad_arguments_raise_kquants_errors(tmp_path, call, match):
    p = tmp_path / "x.gguf"
    w = kquants.GGUFWriter(p)
    with pytest.raises(kquants.KQuantsError, match=match):
        call(w)
    w.abort()
    assert os.listdir(tmp_path) == []


def test_duplicates_rejected(tmp_path):
    with kquants.GGUFWriter(tmp_path / "x.gguf") as w:
        w.add_uint32("k", 1)
        with pytest.raises(kquants.KQuantsError, match="duplicate metadata key 'k'"):
            w.add_int32("k", 2)
        w.add_tensor_info("t", (32,), "f32")
        with pytest.raises(kquants.KQuantsError, match="duplicate tensor name 't'"):
            w.add_tensor_info("t", (32,), "f32")
        w.write_tensor_data(np.zeros(32, np.float32))
    with kquants.GGUFFile(tmp_path / "x.gguf") as f:
        assert f.metadata == {"k": 1} and len(f.tensors) == 1


def test_order_and_size_enforced(tmp_path):
    p = tmp_path / "x.gguf"
    w = kquants.GGUFWriter(p)
    w.add_tensor_info("a", (8,), "f32")
    w.add_tensor_info("b", (8,), "f32")
    w.write_tensor_data(np.zeros(4, np.float32))
    with pytest.raises(kquants.KQuantsError, match="before tensor data"):
        w.add_uint32("late", 1)
    with pytest.raises(kquants.KQuantsError, match="before tensor data"):
        w.add_tensor_info("c", (8,), "f32")
    with pytest.raises(kquants.KQuantsError, match="tensor 'a': got 20 bytes, but only 16"):
        w.write_tensor_data(np.zeros(5, np.float32))
    w.write_tensor_data(np.zeros(4, np.float32))
    assert w.current_tensor == "b"
    with pytest.raises(kquants.KQuantsError, match="tensor 'b' \\(2 of 2\\) has 32 of its 32 bytes unwritten"):
        w.finish()
    assert not p.exists() and os.listdir(tmp_path) == []
    with pytest.raises(kquants.KQuantsError, match="aborted"):
        w.write_tensor_data(b"\0" * 32)


def test_too_many_tensor_writes(tmp_path):
    with kquants.GGUFWriter(tmp_path / "x.gguf") as w:
        w.add_tensor_info("a", (8,), "f32")
        w.write_tensor_data(np.zeros(8, np.float32))
        with pytest.raises(kquants.KQuantsError, match="already written"):
            w.write_tensor_data(b"\0")


def test_exception_in_with_block_leaves_no_file(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_bytes(b"old contents")
    with pytest.raises(RuntimeError):
        with kquants.GGUFWriter(p) as w:
            w.add_tensor_info("a", (1 << 20,), "f32")
            w.write_tensor_data(np.zeros(1 << 19, np.float32))
            assert os.path.exists(w._w.temp_path)
            raise RuntimeError("boom")
    assert p.read_bytes() == b"old contents"
    assert sorted(os.listdir(tmp_path)) == ["x.gguf"]


def test_discarded_writer_removes_temp_file(tmp_path):
    p = tmp_path / "x.gguf"
    w = kquants.GGUFWriter(p)
    w.add_uint32("k", 1)
    tmp = w._w.temp_path
    assert os.path.dirname(tmp) == str(tmp_path) and os.path.exists(tmp)
    del w
    gc.collect()
    assert os.listdir(tmp_path) == []


def test_finish_replaces_existing_file_atomically(tmp_path):
    p = tmp_path / "x.gguf"
    p.write_bytes(b"old")
    w = kquants.GGUFWriter(p)
    w.add_uint32("k", 1)
    assert p.read_bytes() == b"old"  # nothing visible before finish
    w.finish()
    with kquants.GGUFFile(p) as f:
        assert f.metadata == {"k": 1}
    assert os.listdir(tmp_path) == ["x.gguf"]
    assert (os.stat(p).st_mode & 0o777) == (0o666 & ~_umask())


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_destination_must_differ_from_inputs(tmp_path):
    src = tmp_path / "src.gguf"
    with kquants.GGUFWriter(src) as w:
        w.add_uint32("k", 1)
    with pytest.raises(kquants.KQuantsError, match="is the input file"):
        kquants.GGUFWriter(src, inputs=[src])
    link = tmp_path / "link.gguf"
    os.link(src, link)  # same inode, other name
    with pytest.raises(kquants.KQuantsError, match="is the input file"):
        kquants.GGUFWriter(link, inputs=[src])
    with kquants.GGUFFile(src):  # an open reader counts as an input
        with pytest.raises(kquants.KQuantsError, match="is the input file"):
            kquants.GGUFWriter(src)
    assert sorted(os.listdir(tmp_path)) == ["link.gguf", "src.gguf"]


def test_unwritable_destinations_are_oserrors(tmp_path):
    with pytest.raises(kquants.KQuantsIOError, match="cannot create a temporary file"):
        kquants.GGUFWriter(tmp_path / "no" / "such" / "dir.gguf")
    with pytest.raises(kquants.KQuantsIOError, match="is a directory"):
        kquants.GGUFWriter(tmp_path)


def test_zero_size_and_zero_dim_tensors(tmp_path):
    p = tmp_path / "x.gguf"
    with kquants.GGUFWriter(p) as w:
        w.add_tensor_info("empty", (0, 32), "q8_0")
        w.add_tensor_info("one", (32,), "f32")
        w.add_tensor_info("empty2", (0,), "f32")
        w.write_tensor_data(np.ones(32, np.float32))
    ref = gguf.GGUFReader(p)
    assert [t.name for t in ref.tensors] == ["empty", "one", "empty2"]
    with kquants.GGUFFile(p) as f:
        assert f.tensor("empty").nbytes == 0 and f.tensor_data("empty").size == 0
        assert f.dequantize("empty").shape == (0, 32)
        assert f.dequantize("one").tolist() == [1.0] * 32
        assert f.dequantize("empty2").shape == (0,)
    del ref
    gc.collect()


def test_write_tensor_whole_checks_name_and_size(tmp_path):
    p = tmp_path / "x.gguf"
    with kquants.GGUFWriter(p) as w:
        w.add_tensor_info("e", (0,), "f32")
        w.add_tensor_info("a", (8,), "f32")
        w.add_tensor_info("b", (2, 32), "q8_0")
        with pytest.raises(kquants.KQuantsError, match="'b' written out of order; tensor 'a' comes next"):
            w.write_tensor("b", np.zeros(68, np.uint8))
        with pytest.raises(kquants.KQuantsError, match="no tensor 'zz' was declared"):
            w.write_tensor("zz", b"")
        with pytest.raises(kquants.KQuantsError, match="tensor 'a' has 28 bytes, expected 32"):
            w.write_tensor("a", np.zeros(7, np.float32))
        w.write_tensor("e", np.zeros(0, np.float32))  # empty: nothing to write, accepted
        w.write_tensor("a", np.arange(8, dtype=np.float32))
        with pytest.raises(kquants.KQuantsError, match="'a' written out of order"):
            w.write_tensor("a", np.arange(8, dtype=np.float32))
        w.write_tensor("b", np.full((2, 34), 7, np.uint8))
        assert w.current_tensor == ""
    with kquants.GGUFFile(p) as f:
        assert f.tensor_data("a").view(np.float32).tolist() == list(range(8))
        assert f.tensor_data("b").tobytes() == b"\x07" * 68


def test_fsync_off_writes_the_same_file(tmp_path):
    def write(path, fsync):
        with kquants.GGUFWriter(path, arch="x", fsync=fsync) as w:
            w.add_array("t", ["a", "bc"])
            w.add_tensor_info("w", (3, 32), "f16")
            w.write_tensor("w", np.ones((3, 32), np.float16))
    write(tmp_path / "a.gguf", True)
    write(tmp_path / "b.gguf", False)
    assert (tmp_path / "a.gguf").read_bytes() == (tmp_path / "b.gguf").read_bytes()
    assert sorted(os.listdir(tmp_path)) == ["a.gguf", "b.gguf"]


def test_release_keeps_views_valid(tmp_path):
    p = tmp_path / "x.gguf"
    x = RNG.standard_normal((64, 1024), dtype=np.float32)  # 256 KiB: many pages
    with kquants.GGUFWriter(p) as w:
        w.add_tensor_info("x", x.shape, "f32")
        w.write_tensor("x", x)
    with kquants.GGUFFile(p) as f:
        v = f.tensor_data("x")
        f.release("x")
        assert np.array_equal(v.view(np.float32).reshape(x.shape), x)  # read back from the page cache
        with pytest.raises(kquants.KQuantsError, match="no tensor"):
            f.release("y")


def test_mapped_file(tmp_path):
    p = tmp_path / "blob"
    p.write_bytes(bytes(range(256)) * 64)
    m = kquants._core.MappedFile(str(p))
    assert m.size == 16384 and m.path == str(p)
    v = m.view(250, 10)
    assert v.tolist() == [250, 251, 252, 253, 254, 255, 0, 1, 2, 3] and not v.flags.writeable
    m.release(0, m.size)
    m.release(10**12, 5)  # out of range: ignored
    assert v.tolist()[0] == 250
    with pytest.raises(kquants.KQuantsError, match="past the end of the file"):
        m.view(16380, 5)
    with pytest.raises(kquants.KQuantsError, match="past the end of the file"):
        m.view(2**64 - 1, 2)
    del m
    assert v[5] == 255  # the view keeps the mapping alive
    with pytest.raises(kquants.KQuantsIOError, match="cannot open"):
        kquants._core.MappedFile(str(tmp_path / "missing"))
