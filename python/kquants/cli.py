"""The ``kquants`` command line (also ``python -m kquants``).

Subcommands live in the COMMANDS table: each is a Command with a function
that adds its arguments to an argparse sub-parser and a function that runs
it and returns the exit status. A new subcommand (convert, quantize,
perplexity, generate, ...) is one more ``register(Command(...))``; main()
needs no change.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

from . import _core


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


COMMANDS: dict = {}


def register(cmd: Command) -> Command:
    if cmd.name in COMMANDS:
        raise ValueError(f"subcommand {cmd.name!r} registered twice")
    COMMANDS[cmd.name] = cmd
    return cmd


# --- info -------------------------------------------------------------------------

# Arrays up to this many elements are printed in full; longer ones as type and length.
_MAX_ARRAY_SHOWN = 16
# Strings are cut to this many characters (chat templates run to kilobytes).
_MAX_STRING_SHOWN = 80


def _fmt_value(v) -> str:
    if isinstance(v, str):
        if len(v) > _MAX_STRING_SHOWN:
            return repr(v[:_MAX_STRING_SHOWN]) + f"... ({len(v)} chars)"
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_fmt_value(x) for x in v) + "]"
    return repr(v)


def _fmt_type(field) -> str:
    if field.sub_type is None:
        return field.type.name
    return f"[{field.sub_type.name}]"


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f}"


def _info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="GGUF file")
    p.add_argument("--no-tensors", action="store_true", help="omit the tensor table")
    p.add_argument("--json", action="store_true",
                   help="machine-readable output (metadata schema, small values, tensors, totals)")


def _info(args: argparse.Namespace) -> int:
    from .gguf import GGUFFile  # imported here: `kquants --help` stays light

    with GGUFFile(args.file) as f:
        fields = f.fields
        tensors = f.tensors
        small = {}
        for key, fd in fields.items():
            if fd.sub_type is None or fd.count <= _MAX_ARRAY_SHOWN:
                small[key] = f.get(key)
        n_params = sum(t.n_elements for t in tensors)
        n_bytes = sum(t.nbytes for t in tensors)
        bpw = 8.0 * n_bytes / n_params if n_params else 0.0
        by_type: dict = {}
        for t in tensors:
            c = by_type.setdefault(t.type.name, [0, 0, 0])
            c[0] += 1
            c[1] += t.n_elements
            c[2] += t.nbytes

        if args.json:
            out = {
                "file": f.path, "file_size": f.file_size, "version": f.version, "alignment": f.alignment,
                "data_offset": f.data_offset,
                "metadata": {k: {"type": fd.type.name,
                                 **({"sub_type": fd.sub_type.name, "count": fd.count} if fd.sub_type is not None else {}),
                                 **({"value": small[k]} if k in small and not isinstance(small[k], bytes) else {})}
                             for k, fd in fields.items()},
                "tensors": [] if args.no_tensors else [
                    {"name": t.name, "type": t.type.name, "shape": list(t.shape), "offset": t.offset,
                     "nbytes": t.nbytes} for t in tensors],
                "n_params": n_params, "tensor_bytes": n_bytes, "bits_per_weight": bpw,
                "types": {k: {"tensors": v[0], "params": v[1], "bytes": v[2]} for k, v in by_type.items()},
            }
            sys.stdout.write(json.dumps(out, indent=1) + "\n")
            return 0

        lines = [f"{f.path}",
                 f"  GGUF v{f.version}, {f.file_size} bytes ({_mib(f.file_size)} MiB), alignment {f.alignment}, "
                 f"data at offset {f.data_offset}",
                 "", f"Metadata ({len(fields)} keys):"]
        kw = max((len(k) for k in fields), default=0)
        for key, fd in fields.items():
            if key in small:
                shown = _fmt_value(small[key])
            else:
                shown = f"<{fd.count} items>"
            lines.append(f"  {key:<{kw}}  {_fmt_type(fd):<10} {shown}")
        if not args.no_tensors:
            lines += ["", f"Tensors ({len(tensors)}), shape in NumPy order (row length last):"]
            nw = max((len(t.name) for t in tensors), default=4)
            lines.append(f"  {'#':>4}  {'name':<{nw}}  {'type':<5}  {'shape':<16} {'bytes':>12} {'MiB':>9}")
            for i, t in enumerate(tensors):
                shape = "x".join(str(d) for d in t.shape) or "scalar"
                lines.append(f"  {i:>4}  {t.name:<{nw}}  {t.type.name:<5}  {shape:<16} {t.nbytes:>12} "
                             f"{_mib(t.nbytes):>9}")
        lines += ["", "By type:"]
        for name, (cnt, params, nb) in sorted(by_type.items(), key=lambda kv: -kv[1][2]):
            lines.append(f"  {name:<5} {cnt:>5} tensors {params:>14,} params {_mib(nb):>10} MiB "
                         f"{8.0 * nb / params if params else 0.0:6.3f} bpw")
        lines.append(f"Total: {len(tensors)} tensors, {n_params:,} params, {_mib(n_bytes)} MiB, "
                     f"{bpw:.3f} bits per weight")
        sys.stdout.write("\n".join(lines) + "\n")
    return 0


register(Command("info", "show a GGUF file's metadata, tensors and bits per weight", _info_arguments, _info))

# Model-file subcommands (convert, quantize, export-hf) live with the converter.
from .convert.cli import SUBCOMMANDS as _CONVERT_SUBCOMMANDS  # noqa: E402

for _c in _CONVERT_SUBCOMMANDS:
    register(Command(*_c))

# Inference subcommands (generate, perplexity, kl-divergence) live with the runtime.
from .runtime_cli import SUBCOMMANDS as _RUNTIME_SUBCOMMANDS  # noqa: E402

for _c in _RUNTIME_SUBCOMMANDS:
    register(Command(*_c))


# --- entry point --------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kquants", description="llama.cpp-compatible quantization and inference")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except BrokenPipeError:  # e.g. `kquants info x.gguf | head`: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except (_core.KQuantsError, OSError) as e:  # KQuantsIOError is an OSError
        sys.stderr.write(f"kquants {args.command}: error: {e}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
