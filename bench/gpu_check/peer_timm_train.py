"""The peer of vitlab-gpu-check's throughput lines: timm's model of the same name, trained with the
same step (forward under autocast, soft-target cross-entropy in float32, backward, clipping at 1,
AdamW) on random images of the same batch, in the same precision, on the same device. Reads the
models, batches and precisions from vitlab-gpu-check's output; prints a JSON line per model."""
import argparse
import json
import time

import torch


def images_per_second(name, batch, precision, steps, device):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False).to(device)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    size = model.pretrained_cfg.get("input_size", (3, 224, 224))
    images = torch.randn(batch, *size, device=device)
    classes = model.num_classes
    targets = torch.nn.functional.one_hot(torch.randint(classes, (batch,), device=device), classes).float()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.split(":")[0], enabled=dtype == torch.float16)

    def step():
        with torch.autocast(device.split(":")[0], dtype=dtype or torch.float32, enabled=dtype is not None):
            logits = model(images)
        loss = -(targets * torch.log_softmax(logits.float(), -1)).sum(-1).mean()
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss.item()  # one synchronisation per step, as ViTLab's trainer reads its loss

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--from", dest="source", required=True, help="vitlab-gpu-check's JSON lines")
    arguments = parser.parse_args()
    for line in open(arguments.source):
        ours = json.loads(line)
        if ours.get("check") != "throughput":
            continue
        result = {"model": ours["model"], "batch": ours["batch"], "precision": ours["precision"]}
        try:
            result["images_per_s"] = images_per_second(ours["model"], ours["batch"], ours["precision"], ours["steps"],
                                                       arguments.device)
        except Exception as error:  # a model timm lacks: say so, measure the others
            result["error"] = f"{type(error).__name__}: {error}"
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
