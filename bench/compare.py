"""Prints our Google Benchmark times next to the Python peer's, as peer/ours ratios.

Arguments: the benchmark prefix, then one pair of files per round: our Google Benchmark JSON
output and the peer's JSON ({"fp32/1": ms, ...}). Each side's best round is compared; with more
than one round, the lowest and highest per-round ratios follow.
"""
import json
import sys

prefix, files = sys.argv[1], sys.argv[2:]
rounds = []
for ours_file, peer_file in zip(files[0::2], files[1::2]):
    ours = {run["name"].replace("/real_time", ""): run["real_time"] for run in json.load(open(ours_file))["benchmarks"]}
    peer = json.load(open(peer_file))
    # The peer's "fp32/1" is our "PREFIX_fp32/1".
    rounds.append({key: (ours[f"{prefix}_{key}"], their_ms) for key, their_ms in peer.items()})
for key in rounds[0]:
    precision, batch = key.split("/")
    our_ms = min(r[key][0] for r in rounds)
    their_ms = min(r[key][1] for r in rounds)
    line = (f"{prefix} {precision} batch {batch}: ViTLab {our_ms:.2f} ms, PyTorch {their_ms:.2f} ms, "
            f"ratio (peer/ours) {their_ms / our_ms:.2f}x")
    if len(rounds) > 1:
        ratios = [r[key][1] / r[key][0] for r in rounds]
        line += f" (rounds: {min(ratios):.2f}-{max(ratios):.2f}x)"
    print(line)
