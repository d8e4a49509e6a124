#!/usr/bin/env python3
"""Reference quantisation for tests/kernels/test_quantize.cpp: what llama.cpp writes.

  check BACKEND          exit 0 when BACKEND can run here (nothing printed), else 1 with the
                         reason on stdout
  quantize BACKEND IN N_PER_ROW OUT_DIR TYPE...
                         IN: raw little-endian float32 rows of N_PER_ROW elements; for each
                         TYPE (ggml's name, e.g. Q4_K) writes OUT_DIR/TYPE.bin with the rows
                         quantised, or OUT_DIR/TYPE.skip with the reason when BACKEND cannot.

BACKEND `ggml`: llama.cpp's own libggml-base (shipped in the llama_cpp package of
llama-cpp-python) through ctypes: ggml_quantize_chunk(type, src, dst, 0, nrows, n_per_row,
imatrix=NULL), i.e. the quantize_row_*_ref code `llama-quantize` runs without an imatrix.
$LLMKIT_LIBGGML names another libggml-base to use instead.
BACKEND `gguf`: the `gguf` package's numpy quantisers (gguf.quants.quantize), which only
exist for some types.
"""
import ctypes
import glob
import importlib.util
import os
import sys

import numpy as np

# ggml's enum ggml_type numbers (ggml.h).
TYPES = {"F32": 0, "F16": 1, "Q4_0": 2, "Q4_1": 3, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8,
         "Q4_K": 12, "Q5_K": 13, "Q6_K": 14, "BF16": 30}


def find_libggml_base():
    if os.environ.get("LLMKIT_LIBGGML"):
        return os.environ["LLMKIT_LIBGGML"], None
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or not spec.submodule_search_locations:
        return None, "the llama_cpp package (llama-cpp-python) is not installed"
    for root in spec.submodule_search_locations:
        for pattern in ("lib/libggml-base.so*", "lib/libggml-base.dylib", "lib/libggml.so*",
                        "**/libggml-base.so*"):
            hits = sorted(glob.glob(os.path.join(root, pattern), recursive=True))
            if hits:
                return hits[0], None
    return None, "no libggml-base / libggml shared library inside the llama_cpp package"


def ggml_quantizer():
    path, why = find_libggml_base()
    if path is None:
        return None, why
    try:
        lib = ctypes.CDLL(path)
        fn = lib.ggml_quantize_chunk
    except (OSError, AttributeError) as e:
        return None, f"{path}: {e}"
    fn.restype = ctypes.c_size_t
    fn.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64,
                   ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
    row_size = lib.ggml_row_size
    row_size.restype = ctypes.c_size_t
    row_size.argtypes = [ctypes.c_int, ctypes.c_int64]

    def quantize(rows, name):
        nrows, n = rows.shape
        t = TYPES[name]
        out = np.zeros(row_size(t, n) * nrows, dtype=np.uint8)
        src = np.ascontiguousarray(rows, dtype=np.float32)
        written = fn(t, src.ctypes.data, out.ctypes.data, 0, nrows, n, None)
        if written != out.size:
            raise RuntimeError(f"ggml_quantize_chunk wrote {written} bytes, expected {out.size}")
        return out.tobytes(), None

    return quantize, None


def gguf_quantizer():
    try:
        import gguf
        from gguf import GGMLQuantizationType as Q
    except ImportError as e:
        return None, f"the gguf package does not import: {e}"

    def quantize(rows, name):
        try:
            with np.errstate(over="ignore", invalid="ignore"):  # fp16 overflow rows
                return gguf.quants.quantize(rows.astype(np.float32), Q[name]).tobytes(), None
        except NotImplementedError as e:
            return None, f"the gguf package has no quantiser for {name}"

    return quantize, None


def quantizer(backend):
    if backend == "ggml":
        return ggml_quantizer()
    if backend == "gguf":
        return gguf_quantizer()
    return None, f"unknown backend {backend}"


def main(argv):
    if len(argv) >= 2 and argv[0] == "check":
        fn, why = quantizer(argv[1])
        if fn is None:
            print(why)
            return 1
        return 0
    if len(argv) < 6 or argv[0] != "quantize":
        print(__doc__, file=sys.stderr)
        return 2
    backend, path, n, out_dir, names = argv[1], argv[2], int(argv[3]), argv[4], argv[5:]
    fn, why = quantizer(backend)
    if fn is None:
        print(why, file=sys.stderr)
        return 1
    rows = np.fromfile(path, dtype="<f4").reshape(-1, n)
    for name in names:
        data, skip = fn(rows, name)
        if data is None:
            with open(os.path.join(out_dir, name + ".skip"), "w") as f:
                f.write(skip)
        else:
            with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
                f.write(data)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
