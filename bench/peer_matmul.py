"""The Python peer of bench_matmul: the same linear layer in PyTorch, same threads."""
import json
import sys
import time

import torch


def seconds_per_call(dtype, threads, repeats=20):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    tokens = torch.randn(32 * 197, 192).to(dtype)
    weight = torch.randn(768, 192).to(dtype)
    with torch.no_grad():
        for _ in range(3):
            torch.nn.functional.linear(tokens, weight)
        start = time.perf_counter()
        for _ in range(repeats):
            torch.nn.functional.linear(tokens, weight)
        return (time.perf_counter() - start) / repeats


if __name__ == "__main__":
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else torch.get_num_threads()
    dtypes = {"fp32": torch.float32, "bf16": torch.bfloat16}
    precisions = sys.argv[2:] or list(dtypes)
    print(json.dumps({"threads": threads,
                      **{f"{p}_ms": 1e3 * seconds_per_call(dtypes[p], threads) for p in precisions}}))
