#!/usr/bin/env bash
# The app against vitlab-cli train on the same Fashion-MNIST settings, in the same run, twice each
# and interleaved: time from Start to the first step, and the images per second of the first
# epoch's steps (from each run's metrics.csv, steps 2 on). The app runs under a virtual X server
# (offscreen without one), the Train page and its live charts shown.
#   bench/app_speed.sh [--seconds 40] [--rounds 2]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD_DIR:-$here/build}
seconds=40 rounds=2
while (($#)); do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
export VITLAB_RUNS_DIR="$runs" XDG_CONFIG_HOME="$runs/config"
lscpu | sed -n 's/^Model name: *//p;s/^CPU family: *//p' | paste -sd' ' | sed 's/^/CPU: /'

app() {
  if command -v xvfb-run >/dev/null 2>&1; then
    xvfb-run -a -s "-screen 0 1280x800x24" "$build/bench/app_speed" --seconds "$seconds"
  else
    QT_QPA_PLATFORM=offscreen "$build/bench/app_speed" --seconds "$seconds"
  fi
}

# The Model page's Fashion-MNIST settings are TrainConfig's defaults with a 15-minute budget, and a
# metrics row every step.
cli() {
  local name="cli-$1" start first
  start=$(date +%s.%N)
  timeout $((seconds + 60)) "$build/app/vitlab-cli" train --data fashion-mnist --log-every 1 --minutes 15 \
    --max-minutes "$(python3 -c "print($seconds / 60)")" --name "$name" --quiet || true
  echo "run $runs/$name"
}

throughput() {
  python3 - "$1" <<'PY'
import csv, sys
rows = [r for r in csv.DictReader(open(sys.argv[1] + "/metrics.csv")) if r["kind"] == "step" and r["epoch"] == "1"]
config = __import__("json").load(open(sys.argv[1] + "/config.json"))["train"]
batch = config["batch_size"] * config.get("accumulation", 1)
first, last = rows[1], rows[-1]
steps = int(last["step"]) - int(first["step"])
print("%.0f" % (steps * batch / (float(last["seconds"]) - float(first["seconds"]))))
PY
}

for round in $(seq "$rounds"); do
  out=$(app)
  app_run=$(sed -n 's/^run //p' <<<"$out")
  first=$(sed -n 's/^start_to_first_step_s //p' <<<"$out")
  app_rate=$(throughput "$app_run")
  cli_run=$(cli "$round" | sed -n 's/^run //p')
  cli_rate=$(throughput "$cli_run")
  python3 -c "print('round $round: app $app_rate img/s (Start to first step ${first} s), vitlab-cli $cli_rate img/s: app/cli %.2f' % ($app_rate / $cli_rate))"
done
