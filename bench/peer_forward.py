"""The Python peer of bench_forward: torchvision's VisionTransformer of ViT-Tiny/16's size.

Arguments: threads, then the precisions to time (fp32, bf16; both when none are given)."""
import json
import sys
import time

import torch
import torchvision


def milliseconds(model, batch, bf16, min_seconds=2.0):
    images = torch.randn(batch, 3, 224, 224)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for _ in range(2):
            model(images)
        runs, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_seconds:
            model(images)
            runs += 1
        return 1e3 * (time.perf_counter() - start) / runs


if __name__ == "__main__":
    torch.set_num_threads(int(sys.argv[1]))
    torch.manual_seed(0)
    model = torchvision.models.VisionTransformer(image_size=224, patch_size=16, num_layers=12, num_heads=3,
                                                 hidden_dim=192, mlp_dim=768, num_classes=1000).eval()
    precisions = sys.argv[2:] or ["fp32", "bf16"]
    print(json.dumps({f"{p}/{b}": milliseconds(model, b, p == "bf16") for p in precisions for b in (1, 32)}))
