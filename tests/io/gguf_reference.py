#!/usr/bin/env python3
"""The `gguf` Python package (llama.cpp's gguf-py) as the reference for tests/io/test_gguf*.cpp.

  blocks OUT_DIR [SEED]    OUT_DIR/blocks.gguf written by gguf.GGUFWriter, one tensor per ggml
                           type llmkit dequantises (gguf.quants.quantize where it exists, plus
                           random valid blocks with finite fp16 scales), and
                           OUT_DIR/expected.safetensors: gguf.quants.dequantize of each (F32).
  dump FILE OUT_JSON [--values OUT.safetensors NAME[:ROWS]...]
                           what gguf.GGUFReader reads: version, alignment, data offset, every
                           key/value (strings as hex of their bytes) and tensor info (name, type,
                           ne, offset from the data section, bytes); --values also writes the
                           dequantisation of the named tensors.
Only numpy and gguf are needed; the safetensors files are written by hand (F32 only).
"""
import json
import struct
import sys

import numpy as np
import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as V


def write_safetensors(path, tensors):
    """tensors: list of (name, float32 ndarray)."""
    header, offset, blobs = {}, 0, []
    for name, a in tensors:
        b = np.ascontiguousarray(a, dtype=np.float32).tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def finite_f16_bits(rng, n):
    """n random binary16 bit patterns that are finite (any sign, exponent 0..30, mantissa)."""
    bits = rng.integers(0, 1 << 16, size=n, dtype=np.uint32).astype(np.uint16)
    exp = (bits >> 10) & 0x1F
    return np.where(exp == 31, bits & np.uint16(0x83FF), bits).astype(np.uint16)


# Byte offsets of the fp16 fields in each block (d, m / dmin), ggml-common.h.
FP16_FIELDS = {Q.Q4_0: [0], Q.Q4_1: [0, 2], Q.Q5_0: [0], Q.Q5_1: [0, 2], Q.Q8_0: [0],
               Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}
ROWS = 4


def random_blocks(rng, qtype, n_blocks):
    """Random bytes for n_blocks blocks, the fp16 scales replaced by finite values."""
    _, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    for off in FP16_FIELDS[qtype]:
        raw[:, off:off + 2] = finite_f16_bits(rng, n_blocks).view(np.uint8).reshape(n_blocks, 2)
    return raw


def make_blocks(out_dir, seed):
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(out_dir + "/blocks.gguf", "llmkit-test")
    expected = []

    def add(name, qtype, raw_rows):
        """raw_rows: uint8 [ROWS, bytes per row] (or float32 / float16 data for F32 / F16)."""
        if qtype in (Q.F32, Q.F16):
            w.add_tensor(name, raw_rows)
            values = gguf.quants.dequantize(raw_rows.view(np.uint8), qtype)
        else:
            w.add_tensor(name, raw_rows, raw_dtype=qtype)
            values = gguf.quants.dequantize(raw_rows, qtype)
        expected.append((name, values.reshape(raw_rows.shape[0], -1)))

    # F32 and BF16: random bit patterns without NaN; F16: any finite pattern plus infinities.
    f32 = rng.integers(0, 1 << 32, size=(ROWS, 64), dtype=np.uint64).astype(np.uint32)
    f32 = np.where((f32 & 0x7F800000) == 0x7F800000, f32 & 0x807FFFFF, f32).astype(np.uint32)
    add("f32", Q.F32, f32.view(np.float32))
    f16 = finite_f16_bits(rng, ROWS * 64).reshape(ROWS, 64)
    f16[0, :2] = [0x7C00, 0xFC00]
    add("f16", Q.F16, f16.view(np.float16))
    bf16 = rng.integers(0, 1 << 16, size=(ROWS, 64), dtype=np.uint32).astype(np.uint16)
    bf16 = np.where((bf16 & 0x7F80) == 0x7F80, bf16 & 0x807F, bf16).astype(np.uint16)
    add("bf16", Q.BF16, bf16.view(np.uint8).reshape(ROWS, -1))
    add("bf16_quantized", Q.BF16, gguf.quants.quantize(
        rng.standard_normal((ROWS, 64)).astype(np.float32), Q.BF16).reshape(ROWS, -1))

    for qtype in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q4_K, Q.Q5_K, Q.Q6_K):
        block, _ = gguf.GGML_QUANT_SIZES[qtype]
        n_blocks = 8 if block == 32 else 3  # per row
        raw = random_blocks(rng, qtype, ROWS * n_blocks).reshape(ROWS, -1)
        add(qtype.name.lower(), qtype, raw)
        try:  # the package's own quantiser where it has one (the type 0/1 quants)
            x = (rng.standard_normal((ROWS, n_blocks * block)) * 0.05).astype(np.float32)
            x[0, :block] = 0  # an all-zero block (d = 0)
            q = gguf.quants.quantize(x, qtype)
        except NotImplementedError:
            continue
        add(qtype.name.lower() + "_quantized", qtype, q)

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    write_safetensors(out_dir + "/expected.safetensors", expected)


def field_value(f, t):
    """One key's value: strings as hex, numbers and bools as JSON numbers / booleans."""
    def one(part):
        return part.tobytes().hex() if t == V.STRING else part.tolist()[0]
    if f.types[0] == V.ARRAY:
        return [one(f.parts[i]) for i in f.data]
    return one(f.parts[f.data[0]])


def dump(path, out_json, values_path, names):
    r = gguf.GGUFReader(path)
    meta = []
    for key, f in r.fields.items():
        if key.startswith("GGUF."):
            continue
        entry = {"key": key, "type": int(f.types[0])}
        if f.types[0] == V.ARRAY:  # an empty array's element type is not kept by the reader
            entry["array_type"] = int(f.types[-1]) if len(f.types) > 1 else -1
        entry["value"] = field_value(f, f.types[-1])
        meta.append(entry)
    tensors = [{"name": t.name, "type": int(t.tensor_type), "ne": [int(d) for d in t.shape],
                "offset": int(t.data_offset - r.data_offset), "nbytes": int(t.n_bytes)}
               for t in r.tensors]
    version = int(r.fields["GGUF.version"].parts[0][0])
    with open(out_json, "w") as f:
        json.dump({"version": version, "alignment": int(r.alignment),
                   "data_offset": int(r.data_offset), "metadata": meta, "tensors": tensors}, f)
    if values_path:
        by_name = {t.name: t for t in r.tensors}
        out = []
        for spec in names:  # NAME or NAME:ROWS (only the first ROWS rows of a 2-D tensor)
            n, _, rows = spec.partition(":")
            t = by_name[n]
            data = np.asarray(t.data)
            shape = [int(d) for d in reversed(t.shape.tolist())]
            if rows:
                data, shape[0] = data[:int(rows)], int(rows)
            v = gguf.quants.dequantize(data, t.tensor_type).astype(np.float32)
            out.append((spec, v.reshape(shape)))
        write_safetensors(values_path, out)


def main():
    cmd = sys.argv[1]
    if cmd == "blocks":
        make_blocks(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 0)
    elif cmd == "dump":
        args = sys.argv[2:]
        values, names = None, []
        if "--values" in args:
            k = args.index("--values")
            values, names = args[k + 1], args[k + 2:]
            args = args[:k]
        dump(args[0], args[1], values, names)
    else:
        sys.exit("usage: gguf_reference.py blocks OUT_DIR [SEED] | dump FILE OUT_JSON [--values F N...]")


if __name__ == "__main__":
    main()
