#!/usr/bin/env bash
# GPU check, in one command (about 5-8 minutes on a machine with an NVIDIA GPU):
#   1. builds cucn with Burn's CUDA backend (`--features cuda`);
#   2. runs the PyTorch-parity tests (model_reference, model_import) on the GPU;
#   3. runs `cucn bench` on the GPU and scripts/bench_torch.py on the same GPU, and prints both and
#      their ratio as the Markdown table docs/PERFORMANCE.md takes.
# Results land in $OUT (default target/gpu_check/). Without an NVIDIA GPU it builds and stops.
#
# Needs: the Rust toolchain; the NVIDIA driver (the CUDA libraries are loaded at run time); for the
# first build, network access to github.com/tracel-ai/tracel-llvm (cubecl's build script downloads
# an LLVM bundle once into ~/.local/share/tracel); python3 with torch and safetensors for step 3.
# CUDARC_CUDA_VERSION (default 13000) names the CUDA API version cudarc is built against.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-target/gpu_check}
mkdir -p "$OUT"
export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}
STEPS=${STEPS:-10}
WARMUP=${WARMUP:-3}

echo "== build (--features cuda) =="
cargo build --release --features cuda --bin cucn

if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "no NVIDIA GPU here: the CUDA build succeeded; skipping the GPU tests and benchmark"
    exit 0
fi
nvidia-smi -L | tee "$OUT/gpu.txt"

echo "== parity tests on the GPU =="
# Burn's default device is CUDA in a cuda build; BURN_DEVICE makes the choice explicit.
BURN_DEVICE=cuda cargo test --release --features cuda --test model_reference --test model_import \
    2>&1 | tee "$OUT/tests.txt"

echo "== throughput: cucn (CUDA) beside PyTorch (CUDA) =="
BURN_DEVICE=cuda target/release/cucn bench --steps "$STEPS" --warmup "$WARMUP" --json \
    > "$OUT/cucn_bench.json"
python3 scripts/bench_torch.py --device cuda --steps "$STEPS" --warmup "$WARMUP" \
    --compare "$OUT/cucn_bench.json" | tee "$OUT/comparison.md"
echo "results in $OUT"
