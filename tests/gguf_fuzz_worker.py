"""GGUF fuzz worker, run by test_gguf_fuzz.py in a subprocess (a segfault then
fails that test instead of killing pytest).

For each base file it makes N mutants (byte flips, truncations, integer
fields overwritten with boundary values, inserted / deleted / zeroed ranges)
and opens each with kquants.GGUFFile. A mutant must either load — and then
every metadata value, tensor view and (small) dequantization must work — or
raise KQuantsError / GGUFError / KQuantsIOError. Anything else prints the
mutation, saves the file under --out and exits 1.

    python gguf_fuzz_worker.py --out DIR --seed S BASE:N[:SPAN] ...
"""
from __future__ import annotations

import argparse
import json
import os
import random
import struct
import sys
import time
import traceback

import kquants

ALLOWED = (kquants.KQuantsError, kquants.KQuantsIOError)  # GGUFError is a KQuantsError
SCALAR_SIZE = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
U64_MAX = 2**64 - 1


def walk(data: bytes):
    """Offsets and widths of the integer fields of a GGUF file, as far as it parses:
    (structural fields: header, key lengths, types, counts, tensor infos;
     string lengths inside arrays)."""
    major, minor = [], []
    pos = 0

    def take(width, into):
        nonlocal pos
        v = struct.unpack_from("<I" if width == 4 else "<Q", data, pos)[0]
        into.append((pos, width))
        pos += width
        return v

    def skip(n):
        nonlocal pos
        if n > len(data) - pos:
            raise IndexError
        pos += n

    def value(t, into):
        if t == 8:
            skip(take(8, into))
        elif t == 9:
            et = take(4, major)
            n = take(8, major)
            for _ in range(n):
                value(et, minor)
        else:
            skip(SCALAR_SIZE[t])

    try:
        take(4, major)  # magic
        take(4, major)  # version
        n_tensors, n_kv = take(8, major), take(8, major)
        for _ in range(n_kv):
            skip(take(8, major))
            value(take(4, major), major)
        for _ in range(n_tensors):
            skip(take(8, major))
            for _ in range(take(4, major)):
                take(8, major)
            take(4, major)
            take(8, major)
    except (struct.error, IndexError, KeyError):
        pass
    return major, minor


def interesting(size: int, rng: random.Random) -> int:
    return rng.choice([0, 1, 2, 3, 4, 7, 8, 9, 12, 13, 15, 16, 31, 32, 33, 63, 64, 255, 256, 2**16 - 1,
                       2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**62, 2**63 - 1, 2**63, U64_MAX, U64_MAX - 7,
                       size, size - 1, size + 1, size // 2, rng.randrange(2**64), rng.randrange(1024)])


def mutate(base: bytes, fields, span: int, rng: random.Random):
    """One mutant of base and a description of the mutation."""
    major, minor = fields
    data = bytearray(base)
    kind = rng.choice(["flip", "flip", "truncate", "field", "field", "field", "insert", "delete", "zero"])
    if kind == "field" and (major or minor):
        pool = major if (rng.random() < 0.7 or not minor) else minor
        off, width = rng.choice(pool)
        v = interesting(len(base), rng)
        if width == 4:
            v &= 0xFFFFFFFF
        data[off:off + width] = v.to_bytes(width, "little")
        return bytes(data), f"field u{8 * width} at {off} := {v}"
    if kind == "truncate":
        n = rng.randrange(len(base)) if rng.random() < 0.5 else rng.randrange(min(span, len(base)))
        return bytes(data[:n]), f"truncate to {n}"
    if kind == "insert":
        at = rng.randrange(span)
        blob = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        data[at:at] = blob
        return bytes(data), f"insert {blob.hex()} at {at}"
    if kind == "delete":
        at = rng.randrange(span)
        n = rng.randint(1, 16)
        del data[at:at + n]
        return bytes(data), f"delete {n} at {at}"
    if kind == "zero":
        at = rng.randrange(span)
        n = rng.randint(1, 64)
        data[at:at + n] = bytes(len(data[at:at + n]))
        return bytes(data), f"zero {n} at {at}"
    flips = []
    for _ in range(rng.randint(1, 4)):
        at = rng.randrange(span)
        x = rng.randrange(1, 256)
        data[at] ^= x
        flips.append(f"{at}^{x:#x}")
    return bytes(data), "flip " + ",".join(flips)


def exercise(path: str) -> None:
    """Everything a loaded file offers must work."""
    with kquants.GGUFFile(path) as f:
        f.metadata
        for key, fd in f.fields.items():
            f.get(key)
            if fd.type == kquants.GGUFValueType.ARRAY and fd.sub_type not in (
                    kquants.GGUFValueType.STRING, kquants.GGUFValueType.ARRAY):
                f.array(key).sum()
        for t in f.tensors:
            raw = f.tensor_data(t.name)
            assert raw.size == t.nbytes
            if raw.size:
                int(raw[0]) + int(raw[-1])  # touch both ends of the view
            if t.n_elements <= 1 << 16:
                try:
                    y = f.dequantize(t.name)
                    assert y.shape == t.shape
                except kquants.KQuantsError as e:
                    if "not implemented" not in str(e):
                        raise AssertionError(f"dequantize of a validated tensor failed: {e}") from e


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("bases", nargs="+", help="FILE:ITERATIONS[:SPAN] (mutate within the first SPAN bytes)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    target = os.path.join(args.out, "mutant.gguf")
    stats = {}
    t0 = time.perf_counter()
    for spec in args.bases:
        path, n, *rest = spec.split(":")
        base = open(path, "rb").read()
        fields = walk(base)
        span = min(len(base), int(rest[0])) if rest else len(base)
        s = stats[os.path.basename(path)] = {"iterations": int(n), "loaded": 0, "rejected": 0,
                                            "bytes": len(base), "fields": len(fields[0]) + len(fields[1])}
        try:
            exercise(path)
            s["base_loads"] = True
        except ALLOWED:
            s["base_loads"] = False
        for i in range(int(n)):
            data, what = mutate(base, fields, span, rng)
            with open(target, "wb") as fh:
                fh.write(data)
            try:
                exercise(target)
                s["loaded"] += 1
            except ALLOWED as e:
                msg = str(e)
                if target not in msg:
                    return fail(args.out, data, f"{path} #{i} ({what}): error does not name the file: {msg}")
                s["rejected"] += 1
            except BaseException:
                return fail(args.out, data, f"{path} #{i} ({what}):\n{traceback.format_exc()}")
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(stats))
    return 0


def fail(out: str, data: bytes, msg: str) -> int:
    keep = os.path.join(out, "failing.gguf")
    with open(keep, "wb") as fh:
        fh.write(data)
    print(f"UNEXPECTED: {msg}\n(saved as {keep})", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
