"""ggml's own activation quantisation and quantised dot products, called through ctypes in the
libggml-cpu.so that the llama-cpp-python package ships: the reference for
tests/kernels/test_qmatmul.cpp (GgmlReference). Used only as a test oracle.

usage: ggml_qdot_reference.py TYPE N ROWS IN OUT
  IN:  ROWS weight rows of N elements of TYPE (ggml blocks), then N float32 activations
  OUT: the activations as ggml's quantize_row_q8_0 / q8_1 / q8_K writes them, then ROWS float32
       results of ggml_vec_dot_<type>_<q8 type>
"""
import ctypes
import os
import sys

import llama_cpp

TYPES = {  # name: (block elements, block bytes, activation type, activation block bytes)
    "Q4_0": (32, 18, "q8_0", 34),
    "Q4_1": (32, 20, "q8_1", 36),
    "Q5_0": (32, 22, "q8_0", 34),
    "Q5_1": (32, 24, "q8_1", 36),
    "Q8_0": (32, 34, "q8_0", 34),
    "Q4_K": (256, 144, "q8_K", 292),
    "Q5_K": (256, 176, "q8_K", 292),
    "Q6_K": (256, 210, "q8_K", 292),
}


def main():
    name, n, rows, src, dst = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
    blk, bb, act, ab = TYPES[name]
    lib_dir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
    ctypes.CDLL(os.path.join(lib_dir, "libggml-base.so"), mode=ctypes.RTLD_GLOBAL)
    cpu = ctypes.CDLL(os.path.join(lib_dir, "libggml-cpu.so"))
    cpu.ggml_cpu_init()
    quant = getattr(cpu, "quantize_row_" + act)
    quant.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    dot = getattr(cpu, "ggml_vec_dot_%s_%s" % (name.lower().replace("_k", "_K"), act))
    dot.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                    ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    data = open(src, "rb").read()
    row_bytes = n // blk * bb
    w = ctypes.create_string_buffer(data[: rows * row_bytes], rows * row_bytes)
    x = ctypes.create_string_buffer(data[rows * row_bytes:], 4 * n)
    xq = ctypes.create_string_buffer(n // (256 if act == "q8_K" else 32) * ab)
    quant(ctypes.addressof(x), ctypes.addressof(xq), n)
    out = (ctypes.c_float * rows)()
    for r in range(rows):
        dot(n, ctypes.addressof(out) + 4 * r, 0, ctypes.addressof(w) + r * row_bytes, 0,
            ctypes.addressof(xq), 0, 1)
    with open(dst, "wb") as f:
        f.write(xq.raw)
        f.write(bytes(out))


if __name__ == "__main__":
    main()
