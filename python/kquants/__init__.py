"""kquants: llama.cpp-compatible quantization and inference.

Array level (this module):
    quantize_array, dequantize_array, type_info, GGMLType, system_info
    matmul (y = x @ W.T with W quantized), PreparedWeight
CUDA (kquants.cuda): cuda_available, DeviceArray, quantize_array_cuda, ...
Files:
    GGUFFile (read, mmap), GGUFWriter (streaming write)
Text:
    Tokenizer (llama.cpp-exact tokenization from GGUF tokenizer metadata)
Inference:
    Model (Llama-family GGUF decoder on the CPU), perplexity, kl_divergence,
    sweep (quantize to several types and tabulate quality and speed)
"""
from ._core import KQuantsError, GGUFError, KQuantsIOError  # noqa: F401
from .types import GGMLType, TypeInfo, type_info, types, system_info  # noqa: F401
from .quant import quantize_array, dequantize_array  # noqa: F401
from .matmul import matmul, PreparedWeight  # noqa: F401
from .gguf import GGUFFile, GGUFWriter, GGUFTensor, GGUFField, GGUFValueType  # noqa: F401
from .convert import quantize, convert, export_hf  # noqa: F401  (model files; convert/)
from .tokenizer import Tokenizer  # noqa: F401
from .cuda import cuda_available  # noqa: F401
from .model import Model  # noqa: F401
from .perplexity import perplexity, kl_divergence  # noqa: F401
from .sweep import sweep  # noqa: F401

__version__ = "0.1.0"

__all__ = [
    "KQuantsError", "GGUFError", "KQuantsIOError",
    "GGMLType", "TypeInfo", "type_info", "types", "system_info",
    "quantize_array", "dequantize_array", "matmul", "PreparedWeight",
    "GGUFFile", "GGUFWriter", "GGUFTensor", "GGUFField", "GGUFValueType",
    "quantize", "convert", "export_hf",
    "Tokenizer",
    "cuda_available",
    "Model", "perplexity", "kl_divergence", "sweep",
]
