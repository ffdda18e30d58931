"""The registry's pretrained tags (vitlab-cli weights list --json) against timm's own pretrained
configurations: the same tags per model, the same default, the same preprocessing and class count.
Exits 77 (ctest's skip) where timm is not importable."""
import json
import subprocess
import sys

try:
    import timm
except ImportError as error:
    print("skipped: timm is not importable here (%s); the pip flavour's .venv-libtorch has it" % error)
    sys.exit(77)

# Tags timm publishes that ViTLab leaves out on purpose.
LEFT_OUT = {
    "vit_base_patch16_224.bamboo": "115,217 classes and CLIP's normalisation, no licence stated",
}

listed = json.loads(subprocess.run([sys.argv[1], "weights", "list", "--json"], check=True,
                                   capture_output=True, text=True).stdout)
problems = []
by_model = {}
for row in listed:
    by_model.setdefault(row["model"], []).append(row)
for model, rows in sorted(by_model.items()):
    ours = {row["tag"] for row in rows}
    theirs = {name.split(".", 1)[1] for name in timm.list_pretrained(model + ".*") if name not in LEFT_OUT}
    if ours != theirs:
        problems.append("%s: ViTLab lists %s, timm %s" % (model, sorted(ours), sorted(theirs)))
    default = timm.models.get_pretrained_cfg(model).tag
    marked = [row["tag"] for row in rows if row["default"]]
    if marked != [default]:
        problems.append("%s: default %s, timm's %s" % (model, marked, default))
    for row in rows:
        cfg = timm.models.get_pretrained_cfg(row["name"])
        if cfg is None:
            continue
        expected = {"num_classes": cfg.num_classes, "input_size": list(cfg.input_size), "crop_pct": cfg.crop_pct,
                    "interpolation": cfg.interpolation, "mean": list(cfg.mean), "std": list(cfg.std),
                    "repository": cfg.hf_hub_id}
        for key, value in expected.items():
            mine = row[key]
            same = (all(abs(a - b) < 1e-9 for a, b in zip(mine, value)) and len(mine) == len(value)
                    if isinstance(value, list) else mine == value)
            if not same:
                problems.append("%s: %s is %s, timm says %s" % (row["name"], key, mine, value))
print("%d tags of %d models checked against timm %s" % (len(listed), len(by_model), timm.__version__))
for problem in problems:
    print("MISMATCH", problem)
sys.exit(1 if problems else 0)
