# Sourced by the benchmark scripts: names the CPU the figures are measured on, and sets
# PRECISIONS to "fp32 bf16", or to "fp32" where bfloat16 would be emulated (on an AVX2-only CPU
# its matrix products run about 90x slower: minutes per case, and nothing worth comparing).
# Needs BUILD_DIR.
runtime_json="$("$BUILD_DIR/app/vitlab-cli" info --json)"
runtime_field() {
  /usr/bin/python3 -c 'import json, sys; print(json.loads(sys.argv[1])[sys.argv[2]])' "$runtime_json" "$1"
}
echo "CPU: $(runtime_field cpu) ($(nproc) cores)"
if [[ "$(runtime_field cpu_bf16_native)" == True ]]; then
  PRECISIONS="fp32 bf16"
else
  PRECISIONS="fp32"
  echo "bf16 skipped: $(runtime_field auto_precision_reason)"
fi
