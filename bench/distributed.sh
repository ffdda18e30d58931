#!/usr/bin/env bash
# Data-parallel training on this machine: 2 processes x 1 intra-op thread (c10d on Gloo over
# loopback) against 1 process x 2 threads, the same run (Fashion-MNIST, the same --batch), in
# the same session and interleaved. Prints each round's images per second (the steps' mean from
# metrics.csv, the first 5 left out), their ratio, and rank 0's time blocked on the group per step.
#   bench/distributed.sh [--model vit_micro_r5_s4_28] [--batch 128] [--seconds 60] [--rounds 2]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cli=${VITLAB_CLI:-$here/build/app/vitlab-cli}
model=vit_micro_r5_s4_28 batch=128 seconds=60 rounds=2
while (($#)); do
  case "$1" in
    --model) model=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
lscpu | sed -n 's/^Model name: *//p;s/^CPU family: *//p' | paste -sd' ' | sed 's/^/CPU: /'
echo "model $model, batch $batch, fp32, $seconds s per run, $(nproc) cores"

train() { # name, threads per process, extra train options...
  local name=$1 threads=$2
  shift 2
  "$cli" --threads "$threads" train --data fashion-mnist --model "$model" --batch "$batch" --precision fp32 \
    --epochs 1 --max-minutes "$(python3 -c "print($seconds / 60)")" --log-every 1 --out "$runs" --name "$name" \
    "$@" > "$runs/$name.log" 2>&1 || { cat "$runs/$name.log" >&2; exit 1; }
}

rate() { # mean images/s of the steps after the 5th
  python3 -c '
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1])) if r["kind"] == "step"][5:]
rates = [float(r["images_per_s"]) for r in rows]
print("%.1f" % (sum(rates) / max(1, len(rates))))' "$runs/$1/metrics.csv"
}

for round in $(seq "$rounds"); do
  train "one-$round" 2
  train "two-$round" 1 --nproc 2
  one=$(rate "one-$round")
  two=$(rate "two-$round")
  waited=$(sed -n 's/.*rank 0 waited on the group \(.*\)$/\1/p' "$runs/two-$round.log")
  echo "round $round: 1 process x 2 threads $one img/s | 2 processes x 1 thread $two img/s" \
    "| ratio $(python3 -c "print(f'{$two / $one:.2f}')") | rank 0 blocked on the group: ${waited:-?}"
done
