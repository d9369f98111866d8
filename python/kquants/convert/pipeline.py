"""quantize() and convert(): streaming, one tensor at a time.

quantize(src, dst, preset) does what ``convert_hf_to_gguf.py --outtype f16``
followed by ``llama-quantize`` does, in one pass: the source (a GGUF file, or
a HF folder converted on the fly to the same F16 tensors) is read through a
memory map, each tensor's type is chosen by ``presets.TypePlanner`` (llama.cpp's
rules), the tensor is quantized on the native thread pool and written
straight to a temporary file, which is renamed over ``dst`` at the end.
While one tensor is quantized, the next one is loaded (and for HF sources
converted) on a helper thread. Output order and metadata are llama-quantize's:
tensors sorted by layer then name; the input's keys, then
``general.quantization_version`` and ``general.file_type``.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Optional

import numpy as np

from .. import _core
from ..gguf import GGUFValueType, GGUFWriter
from ..quant import quantize_array
from ..types import type_info
from .imatrix import IMatrix, load_imatrix
from .presets import ModelInfo, TypePlanner, get_preset, llama_order_key
from .source import FLOAT_STORAGE, ModelSource, ValueMetadata, check_finite, gguf_source, to_float32

GGML_QNT_VERSION = 2
_DROP_KEYS = ("general.quantization_version", "general.file_type", "split.no", "split.count",
              "split.tensors.count")


def open_source(src, *, outtype: str = "f16", threads=None) -> ModelSource:
    """A GGUF file, or a Hugging Face checkpoint folder converted to `outtype`."""
    p = Path(src)
    if p.is_dir():
        from .converter import hf_source
        return hf_source(p, outtype, threads)
    if p.is_file():
        return gguf_source(p)
    raise _core.KQuantsIOError(f"{p}: no such file or folder (expected a .gguf file or a HF checkpoint folder)")


def _first(v):
    if isinstance(v, (list, np.ndarray)):
        return int(v[0]) if len(v) else 0
    return int(v or 0)


def model_info(src: ModelSource) -> ModelInfo:
    a = src.arch
    n_head = _first(src.kv(f"{a}.attention.head_count", 0))
    return ModelInfo(arch=a, n_layer=_first(src.kv(f"{a}.block_count", 0)), n_head=n_head,
                     n_head_kv=_first(src.kv(f"{a}.attention.head_count_kv", n_head)),
                     n_expert=_first(src.kv(f"{a}.expert_count", 0)))


def _as_imatrix(imatrix) -> Optional[IMatrix]:
    if imatrix is None:
        return None
    if isinstance(imatrix, IMatrix):
        return imatrix
    if isinstance(imatrix, dict):
        data = {k: np.ascontiguousarray(v, dtype=np.float32).reshape(-1) for k, v in imatrix.items()}
        for k, v in data.items():
            if not np.isfinite(v).all():
                raise _core.KQuantsError(f"imatrix entry {k!r} contains a non-finite value")
        return IMatrix(data)
    return load_imatrix(imatrix)


def output_metadata(ftype: int, imat: Optional[IMatrix] = None) -> list:
    """The keys llama-quantize sets after copying the input's: the quantization
    version and file type, then (llama-quantize CLI) the imatrix keys; as
    [(key, value, type, None)]. Setting a key drops the input's copy of it."""
    u32, string = GGUFValueType.UINT32, GGUFValueType.STRING
    out = [("general.quantization_version", GGML_QNT_VERSION, u32, None), ("general.file_type", ftype, u32, None)]
    if imat is not None and imat.path:
        out.append(("quantize.imatrix.file", imat.path[:127], string, None))
        if imat.datasets:
            out.append(("quantize.imatrix.dataset", str(imat.datasets[0])[:127], string, None))
        out.append(("quantize.imatrix.entries_count", len(imat.data), u32, None))
        if imat.chunk_count > 0:
            out.append(("quantize.imatrix.chunks_count", imat.chunk_count, u32, None))
    return out


class _Progress:
    def __init__(self, total: int, desc: str, quiet: bool):
        self.bar = None
        if not quiet:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=desc,
                            dynamic_ncols=True)

    def step(self, name: str, nbytes: int) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(name, refresh=False)
            self.bar.update(nbytes)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _check_float(data, type_name: str, t) -> None:
    if type_name in FLOAT_STORAGE:
        check_finite(np.asarray(data).view(FLOAT_STORAGE[type_name]), t.name, t.origin)


def _imatrix_for(imat: Optional[IMatrix], t, new: str):
    if imat is None or not type_info(new).uses_imatrix:
        return None
    v = imat.get(t.name)
    if v is None:
        return None
    n_expert = int(t.ne[2]) if len(t.ne) > 2 else 1
    if v.size != int(t.ne[0]) * n_expert:
        if t.name in ("token_embd.weight", "per_layer_token_embd.weight"):
            return None
        raise _core.KQuantsError(
            f"imatrix entry for {t.name!r} has {v.size} values, expected {int(t.ne[0]) * n_expert} "
            f"(row length {t.ne[0]} x {n_expert} experts)")
    return v


def _prepare(t, new: str, imat, threads, allow_requantize: bool):
    """Loader-thread half: load the tensor, check it, widen it if needed.
    Returns (data, needs_quantize, imatrix)."""
    data = t.load()
    if new == t.type:
        _check_float(data, t.type, t)
        return data, False, None
    src_info = type_info(t.type)
    if src_info.is_quantized and not allow_requantize:
        raise _core.KQuantsError(
            f"{t.origin}: tensor {t.name!r} is already quantized ({t.type}); requantizing is disabled "
            "(pass allow_requantize=True, at a loss of quality, or start from an F16/BF16/F32 model)")
    n0 = int(t.ne[0])
    if t.type in ("F16", "F32"):
        _check_float(data, t.type, t)
        x = np.asarray(data).view(FLOAT_STORAGE[t.type]).reshape(-1, n0)
    else:
        if t.type == "BF16":
            _check_float(data, t.type, t)
        x = to_float32(data, t.type, t.ne, threads)
        if src_info.is_quantized:
            check_finite(x, t.name, t.origin)
    if new == "F32":
        return x.astype(np.float32, copy=False), False, None
    return x, True, _imatrix_for(imat, t, new)


def _quantize(t, new: str, x, im, threads) -> np.ndarray:
    """Main-thread half: quantize on the native pool (the GIL is released)."""
    n_expert = int(t.ne[2]) if len(t.ne) > 2 else 1
    if im is None or n_expert == 1:
        return quantize_array(x, new, imatrix=im, threads=threads)
    n0, rows_per_expert = int(t.ne[0]), int(t.ne[1])
    parts = [quantize_array(x[e * rows_per_expert:(e + 1) * rows_per_expert], new,
                            imatrix=im[e * n0:(e + 1) * n0], threads=threads) for e in range(n_expert)]
    return np.concatenate(parts, axis=0)


def _write(src: ModelSource, dst, plan, *, extra, drop, imat, threads, quiet, allow_requantize, desc):
    """Streams the output: the source's keys (except `drop` and those in
    `extra`), then `extra`; the tensors of `plan` [(SrcTensor, type)] in order.
    The file is made beside `dst` and renamed into place only when complete;
    `dst` may not be one of the source's files."""
    inputs = [str(src.path)] + sorted({t.origin for t, _ in plan if t.origin})
    prog = _Progress(sum(t.nbytes for t, _ in plan), desc, quiet)
    try:
        # no fsync, as llama-quantize: the rename alone keeps readers off partial data
        with GGUFWriter(dst, inputs=inputs, fsync=False) as out:
            src.meta.write(out, skip=set(drop) | {e[0] for e in extra})
            ValueMetadata(extra).write(out)
            for t, new in plan:
                out.add_tensor_info(t.name, tuple(reversed(t.ne)), new)
            _stream(plan, out, prog, imat=imat, threads=threads, allow_requantize=allow_requantize)
            out.finish()
    finally:
        prog.close()


def _stream(plan, out: GGUFWriter, prog: _Progress, *, imat, threads, allow_requantize) -> None:
    """Three stages overlap: load+check (loader thread), quantize (this thread,
    native pool), write (writer thread, native, GIL released); at most one
    tensor waits in each hand-over. Both threads have stopped when it returns
    or raises, so the writer is never aborted while a write is under way."""
    loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kquants-load")
    writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kquants-write")

    def prep(i):
        t, new = plan[i]
        return _prepare(t, new, imat, threads, allow_requantize)

    def write(t, res):
        out.write_tensor(t.name, res)
        t.release()
        prog.step(t.name, t.nbytes)

    try:
        fut = loader.submit(prep, 0) if plan else None
        pending = None
        for i, (t, new) in enumerate(plan):
            data, needs_q, im = fut.result()
            fut = loader.submit(prep, i + 1) if i + 1 < len(plan) else None
            res = _quantize(t, new, data, im, threads) if needs_q else data
            del data
            if pending is not None:
                pending.result()
            pending = writer.submit(write, t, res)
            del res
        if pending is not None:
            pending.result()
    finally:
        loader.shutdown(wait=True, cancel_futures=True)
        writer.shutdown(wait=True, cancel_futures=True)


def quantize(src, dst, preset, *, imatrix=None, lora=None, lora_scale: float = 1.0, overrides=None,
             threads: Optional[int] = None, quiet: bool = False, allow_requantize: bool = False,
             pure: bool = False, output_type: Optional[str] = None,
             token_embedding_type: Optional[str] = None, outtype: str = "f16") -> dict:
    """Quantizes a GGUF file or a Hugging Face checkpoint folder into ``dst`` (GGUF).

    preset: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q2_k q3_k_s q3_k_m q3_k_l
    q4_k_s q4_k_m q5_k_s q5_k_m q6_k. imatrix: llama-imatrix file (GGUF or
    legacy .dat) or {tensor name: weights}. lora: PEFT adapter folder merged
    into the weights (W + lora_alpha / r * lora_scale * B @ A). overrides:
    {regex: type} or ["regex=type"] (llama-quantize --tensor-type).
    outtype: the type a HF checkpoint is converted to first (f16, as
    ``convert_hf_to_gguf.py --outtype f16``). Returns {tensor: type}.
    """
    p = get_preset(preset)
    imat = _as_imatrix(imatrix)
    source = open_source(src, outtype=outtype, threads=threads)
    if lora is not None:
        from .lora import apply_lora
        source = apply_lora(source, lora, lora_scale)
    order = sorted(source.tensors, key=lambda t: llama_order_key(t.name))
    planner = TypePlanner(p, model_info(source), has_imatrix=imat is not None, overrides=overrides, pure=pure,
                          output_type=output_type, token_embedding_type=token_embedding_type)
    types = planner.plan([(t.name, t.ne, t.type) for t in order])
    plan = list(zip(order, types))
    _write(source, dst, plan, extra=output_metadata(p.ftype, imat), drop=_DROP_KEYS, imat=imat, threads=threads,
           quiet=quiet, allow_requantize=allow_requantize, desc=f"quantize {p.name}")
    return {t.name: new for t, new in plan}


def convert(src, dst, outtype: str = "f16", *, lora=None, lora_scale: float = 1.0, threads: Optional[int] = None,
            quiet: bool = False) -> dict:
    """Converts a Hugging Face checkpoint folder into a GGUF file (f32/f16/bf16/q8_0),
    like llama.cpp's ``convert_hf_to_gguf.py --outtype``. Returns {tensor: type}."""
    if not Path(src).is_dir():
        raise _core.KQuantsError(f"{src}: convert expects a Hugging Face checkpoint folder "
                                 "(use quantize for .gguf inputs)")
    source = open_source(src, outtype=outtype, threads=threads)
    if lora is not None:
        from .lora import apply_lora
        source = apply_lora(source, lora, lora_scale)
    plan = [(t, t.type) for t in source.tensors]
    _write(source, dst, plan, extra=[], drop=(), imat=None, threads=threads, quiet=quiet, allow_requantize=False,
           desc=f"convert {outtype}")
    return {t.name: new for t, new in plan}
