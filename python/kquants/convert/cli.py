"""Command-line subcommands: convert, quantize, export-hf.

``SUBCOMMANDS`` lists them; the ``kquants`` command line (kquants.cli, also
``python -m kquants``) registers them next to its own.
"""
from __future__ import annotations


def _convert(a) -> int:
    from .pipeline import convert
    convert(a.hf_dir, a.out, a.outtype, threads=a.threads, quiet=a.quiet)
    return 0


def _parse_overrides(items):
    out = []
    for it in items or []:
        out.extend(x for x in it.replace(",", " ").split() if x)
    return out


def _quantize(a) -> int:
    from .pipeline import quantize
    quantize(a.input, a.out, a.preset, imatrix=a.imatrix, lora=a.lora, lora_scale=a.lora_scale,
             overrides=_parse_overrides(a.override), threads=a.threads, quiet=a.quiet,
             allow_requantize=a.allow_requantize, pure=a.pure, output_type=a.output_tensor_type,
             token_embedding_type=a.token_embedding_type)
    return 0


def _export(a) -> int:
    from .export import export_hf
    export_hf(a.input, a.out_dir, dtype=a.dtype, threads=a.threads, quiet=a.quiet)
    return 0


def _convert_args(p) -> None:
    p.add_argument("hf_dir")
    p.add_argument("out", help="output .gguf")
    p.add_argument("--outtype", default="f16", choices=["f32", "f16", "bf16", "q8_0"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")


def _quantize_args(p) -> None:
    from .presets import ALIASES, PRESETS
    p.add_argument("input", help=".gguf file or Hugging Face checkpoint folder")
    p.add_argument("out", help="output .gguf")
    p.add_argument("preset", type=str.lower, choices=list(PRESETS) + list(ALIASES), metavar="PRESET",
                   help=", ".join(PRESETS))
    p.add_argument("--imatrix", help="importance matrix (llama-imatrix GGUF or legacy .dat)")
    p.add_argument("--lora", help="PEFT LoRA adapter folder to merge first")
    p.add_argument("--lora-scale", type=float, default=1.0)
    p.add_argument("--override", action="append", metavar="PATTERN=TYPE",
                   help="per-tensor type by regex (llama-quantize --tensor-type); repeatable")
    p.add_argument("--output-tensor-type")
    p.add_argument("--token-embedding-type")
    p.add_argument("--allow-requantize", action="store_true")
    p.add_argument("--pure", action="store_true", help="no k-quant mix rules: every tensor gets the preset type")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")


def _export_args(p) -> None:
    p.add_argument("input")
    p.add_argument("out_dir")
    p.add_argument("--dtype", default="f32", choices=["f32", "f16"])
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true")


# (name, help, add_arguments, run): the shape of kquants.cli.Command, so the
# main CLI registers them with  for c in SUBCOMMANDS: register(Command(*c))
SUBCOMMANDS = [
    ("convert", "Hugging Face checkpoint folder -> GGUF (f32/f16/bf16/q8_0)", _convert_args, _convert),
    ("quantize", "GGUF or Hugging Face folder -> quantized GGUF (llama-quantize presets)", _quantize_args, _quantize),
    ("export-hf", "GGUF -> Hugging Face folder (safetensors, config, tokenizer)", _export_args, _export),
]
