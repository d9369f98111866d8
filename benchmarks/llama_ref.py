"""llama.cpp's quantizer through llama-cpp-python (the peer we compare with).

    llama_quantize(inp, out, "q4_k_m", imatrix={name: float32[...]}, overrides={"attn_v": "q8_0"}, nthread=2)

calls ``llama_cpp.llama_model_quantize`` with the preset's llama_ftype. Needs
llama-cpp-python (0.3.36 is the version the byte-exactness data was made with).
"""
from __future__ import annotations

import ctypes
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "python"))

from kquants.convert.presets import get_preset  # noqa: E402
from kquants.types import type_info  # noqa: E402


def available() -> bool:
    try:
        import llama_cpp  # noqa: F401
        return True
    except ImportError:
        return False


_LOG_CB = None


def quiet_logs() -> None:
    """Silences llama.cpp's per-tensor log lines."""
    global _LOG_CB
    import llama_cpp
    if _LOG_CB is None:
        _LOG_CB = llama_cpp.llama_log_callback(lambda level, text, user_data: None)
        llama_cpp.llama_log_set(_LOG_CB, ctypes.c_void_p())


def llama_quantize(inp, out, preset, *, imatrix=None, overrides=None, nthread: int = 0) -> None:
    import llama_cpp
    quiet_logs()
    p = llama_cpp.llama_model_quantize_default_params()
    p.ftype = get_preset(preset).ftype
    p.nthread = nthread
    keep = []
    if imatrix:
        arr = (llama_cpp.llama_model_imatrix_data * (len(imatrix) + 1))()
        for i, (name, v) in enumerate(imatrix.items()):
            v = np.ascontiguousarray(v, dtype=np.float32)
            keep.append(v)
            arr[i].name = name.encode()
            arr[i].data = v.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
            arr[i].size = v.size
        arr[len(imatrix)].name = None
        p.imatrix = arr
        keep.append(arr)
    if overrides:
        items = list(overrides.items())
        arr = (llama_cpp.llama_model_tensor_override * (len(items) + 1))()
        for i, (pat, t) in enumerate(items):
            arr[i].pattern = pat.lower().encode()
            arr[i].type = type_info(t).ggml_id
        arr[len(items)].pattern = None
        arr[len(items)].type = 39  # GGML_TYPE_COUNT terminator is not read; pattern NULL ends the list
        p.tt_overrides = arr
        keep.append(arr)
    rc = llama_cpp.llama_model_quantize(str(inp).encode(), str(out).encode(), ctypes.byref(p))
    if rc != 0:
        raise RuntimeError(f"llama_model_quantize failed ({rc}) for {inp} -> {out} ({preset})")
