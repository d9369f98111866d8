"""Model conversion and quantization: Hugging Face / GGUF -> llama.cpp GGUF.

    kquants.convert(hf_dir, "model-f16.gguf", outtype="f16")
    kquants.quantize(hf_dir_or_gguf, "model-q4_k_m.gguf", "q4_k_m", imatrix=..., lora=...)
    kquants.export_hf("model.gguf", out_dir)
"""
from .pipeline import convert, quantize  # noqa: F401
from .export import export_hf  # noqa: F401
from .presets import PRESETS, get_preset  # noqa: F401

__all__ = ["convert", "quantize", "export_hf", "PRESETS", "get_preset"]
