#!/usr/bin/env python3
"""Quantises a GGUF with llama.cpp's own quantizer (llama_model_quantize through llama-cpp-python),
for bench/quant_vs_llamacpp when `llmkit quantize` is not built. TYPE: f16 q8_0 q4_0 q4_1 q4_k
(llama.cpp's Q4_K_S: its plain-q4_k mix) q6_k.
Usage: quantize_llamacpp.py IN.gguf TYPE OUT.gguf [THREADS]"""
import ctypes
import os
import sys

import llama_cpp

FTYPES = {"f16": llama_cpp.LLAMA_FTYPE_MOSTLY_F16, "q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
          "q4_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0, "q4_1": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_1,
          "q4_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_S, "q6_k": llama_cpp.LLAMA_FTYPE_MOSTLY_Q6_K}


def main():
    src, kind, dst = sys.argv[1:4]
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = FTYPES[kind]
    params.nthread = int(sys.argv[4]) if len(sys.argv) > 4 else 2
    rc = llama_cpp.llama_model_quantize(src.encode(), (dst + ".tmp").encode(), ctypes.byref(params))
    if rc != 0:
        sys.exit(f"quantize_llamacpp: llama_model_quantize({src}, {kind}) returned {rc}")
    os.replace(dst + ".tmp", dst)


if __name__ == "__main__":
    main()
