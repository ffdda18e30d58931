"""Prints our Google Benchmark times next to the Python peer's, as peer/ours ratios."""
import json
import sys

ours_file, peer_json, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
ours = {}
for run in json.load(open(ours_file))["benchmarks"]:
    name = run["name"].replace("/real_time", "")
    ours[name] = run["real_time"]
peer = json.loads(peer_json)
for key, their_ms in peer.items():
    precision, arg = key.split("/")
    our_ms = ours[f"{prefix}_{precision}/{arg}"]
    print(f"{prefix} {precision} batch {arg}: ViTLab {our_ms:.2f} ms, PyTorch {their_ms:.2f} ms, "
          f"ratio (peer/ours) {their_ms / our_ms:.2f}x")
