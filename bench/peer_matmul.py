"""The Python peer of bench_matmul: the same linear layer in PyTorch, same threads."""
import json
import sys
import time

import torch


def seconds_per_call(dtype, threads, repeats=20, onednn=False):
    """`onednn`: the product through the oneDNN inside this torch (mkldnn_linear on tensors already
    in its layout, so no conversion is timed): its best float32 rate where its BLAS holds back."""
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokens = torch.randn(32 * 197, 192).to(dtype)
    weight = torch.randn(768, 192).to(dtype)
    if onednn:
        tokens, weight = tokens.to_mkldnn(), weight.to_mkldnn()
        product = lambda: torch._C._nn.mkldnn_linear(tokens, weight)
    else:
        product = lambda: torch.nn.functional.linear(tokens, weight)
    with torch.no_grad():
        for _ in range(3):
            product()
        start = time.perf_counter()
        for _ in range(repeats):
            product()
        return (time.perf_counter() - start) / repeats


if __name__ == "__main__":
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    precisions = sys.argv[2:] or list(dtypes)
    timings = {f"{p}_ms": 1e3 * seconds_per_call(dtypes[p], threads) for p in precisions}
    if "fp32" in precisions and torch.backends.mkldnn.is_available():
        timings["fp32_onednn_ms"] = 1e3 * seconds_per_call(torch.float32, threads, onednn=True)
    print(json.dumps({"threads": threads, **timings}))
