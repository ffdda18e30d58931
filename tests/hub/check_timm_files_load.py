"""timm's own files of every family load in ViTLab as they are: for a standard model per family,
timm builds it (random weights, timm's current layout), saves its state dict as the Hub's
model.safetensors does, and `vitlab-cli forward` must give timm's logits. Swin's file also carries
the relative_position_index and attn_mask buffers that older Hub files hold. Exits 77 (ctest's
skip) where timm is not importable."""
import os
import subprocess
import sys
import tempfile

try:
    import torch
    import timm
    from safetensors.torch import load_file, save_file
except ImportError as error:
    print("skipped: timm is not importable here (%s); the pip flavour's .venv-libtorch has it" % error)
    sys.exit(77)

MODELS = ["vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224",
          "tnt_s_patch16_224", "vit_tiny_r_s16_p8_224"]
cli = sys.argv[1]
torch.manual_seed(0)
failures = []
with tempfile.TemporaryDirectory() as folder:
    inputs = os.path.join(folder, "input.safetensors")
    images = torch.randn(2, 3, 224, 224)
    save_file({"input": images}, inputs)
    for name in MODELS:
        model = timm.create_model(name, pretrained=False).eval()
        state = {key: value.contiguous() for key, value in model.state_dict().items()}
        if name.startswith("swin"):
            # Buffers timm no longer saves but older Hub files have: they must be skipped.
            for key, value in model.named_buffers():
                if "relative_position_index" in key or "attn_mask" in key:
                    state[key] = value.contiguous()
        weights = os.path.join(folder, name + ".safetensors")
        save_file(state, weights)
        with torch.no_grad():
            expected = model(images)
        output = os.path.join(folder, name + ".out.safetensors")
        run = subprocess.run([cli, "forward", "--model", name, "--weights", weights, "--input", inputs,
                              "--output", output], capture_output=True, text=True)
        if run.returncode != 0:
            failures.append("%s: vitlab-cli forward failed: %s" % (name, run.stderr.strip()))
            continue
        logits = load_file(output)["logits"]
        difference = (logits - expected).abs().max().item()
        tolerance = 1e-4 * max(1.0, expected.abs().max().item())
        print("%-34s %d tensors, max |logit difference| %.2e" % (name, len(state), difference))
        if difference > tolerance:
            failures.append("%s: logits differ by %.2e (tolerance %.2e)" % (name, difference, tolerance))
for failure in failures:
    print("FAILED", failure)
sys.exit(1 if failures else 0)
