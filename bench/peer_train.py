"""The Python peer of `vitlab-cli bench train`: the same training step (forward, soft-target
cross-entropy, backward, gradient clipping, AdamW) on a torchvision VisionTransformer of the same
size, on random images. Prints {"images_per_s": ...}."""
import json
import sys
import time

import torch
import torchvision


def build(image_size, patch, depth, heads, width, channels, classes):
    model = torchvision.models.VisionTransformer(image_size=image_size, patch_size=patch, num_layers=depth,
                                                 num_heads=heads, hidden_dim=width, mlp_dim=4 * width,
                                                 num_classes=classes)
    if channels != 3:  # torchvision's stem is fixed to RGB
        model.conv_proj = torch.nn.Conv2d(channels, width, kernel_size=patch, stride=patch)
    return model


def images_per_second(model, batch, image_size, channels, classes, bf16, steps):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    images = torch.randn(batch, channels, image_size, image_size)
    targets = torch.nn.functional.one_hot(torch.randint(classes, (batch,)), classes).float()

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            logits = model(images)
            loss = -(targets * torch.log_softmax(logits.float(), -1)).sum(-1).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad()

    model.train()
    for _ in range(2):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


if __name__ == "__main__":
    threads, image_size, patch, depth, heads, width, channels, classes, batch, precision, steps = sys.argv[1:12]
    torch.set_num_threads(int(threads))
    torch.manual_seed(0)
    model = build(int(image_size), int(patch), int(depth), int(heads), int(width), int(channels), int(classes))
    rate = images_per_second(model, int(batch), int(image_size), int(channels), int(classes), precision == "bf16",
                             int(steps))
    print(json.dumps({"images_per_s": rate}))
