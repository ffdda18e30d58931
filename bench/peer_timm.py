"""The peer a Python user runs today: timm on PyTorch 2.x from PyPI, eager or under torch.compile.
Same work as ViTLab's benches: a training step (forward under autocast, soft-target cross-entropy
in float32, backward, clipping at 1, AdamW) on random images, or inference of one batch.

  peer_timm.py train   THREADS MODEL BATCH PRECISION STEPS eager|compile
  peer_timm.py forward THREADS MODEL BATCH PRECISION ITERATIONS eager|compile

MODEL is a timm name, or "vit_tiny_d6_patch4_28" (ViTLab's Fashion-MNIST preset: width 192, depth 6,
3 heads, patch 4, 28x28 grey). Prints {"images_per_s": ...} (train) or {"ms": ...} (forward, the
median of the timed iterations), or {"error": ...} where torch.compile does not work here."""
import json
import statistics
import sys
import time

import torch


def build(name):
    import timm

    if name == "vit_tiny_d6_patch4_28":
        return timm.models.VisionTransformer(img_size=28, patch_size=4, in_chans=1, embed_dim=192, depth=6,
                                             num_heads=3, num_classes=1000)
    return timm.create_model(name, pretrained=False)


def run(mode, threads, name, batch, precision, count, compiled):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name)
    channels, size = model.patch_embed.proj.in_channels, model.patch_embed.img_size
    images = torch.randn(batch, channels, *size)
    bf16 = precision == "bf16"
    if mode == "train":
        model.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        targets = torch.nn.functional.one_hot(torch.randint(1000, (batch,)), 1000).float()
        forward = torch.compile(model) if compiled else model

        def step():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                logits = forward(images)
            loss = -(targets * torch.log_softmax(logits.float(), -1)).sum(-1).mean()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        for _ in range(3):  # the first compiles
            step()
        start = time.perf_counter()
        for _ in range(count):
            step()
        return {"images_per_s": batch * count / (time.perf_counter() - start)}
    model.eval()
    forward = torch.compile(model) if compiled else model
    times = []
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        for i in range(count + 3):
            start = time.perf_counter()
            forward(images)
            if i >= 3:
                times.append(time.perf_counter() - start)
    return {"ms": 1e3 * statistics.median(times)}


if __name__ == "__main__":
    mode, threads, name, batch, precision, count, how = sys.argv[1:8]
    try:
        result = run(mode, int(threads), name, int(batch), precision, int(count), how == "compile")
    except Exception as error:  # torch.compile needs a working C++ toolchain and Python headers
        result = {"error": f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}
    print(json.dumps(result))
