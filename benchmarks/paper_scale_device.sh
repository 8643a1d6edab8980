#!/usr/bin/env bash
# The paper's scale on one accelerator, in one go (about 8 minutes on one H100-class GPU):
#   1. gdflows eos-conv --size accelerator: full-batch GD on VGG- and ResNet-style nets, 5,000 Fashion-MNIST
#      images at 28x28, two rates each, sharpness against 2/h and the PF's sign agreement against its baseline;
#   2. gdflows compare-optimizers --scale full: DAL against the field on full Fashion-MNIST (where this
#      version of gdflows has that flag; otherwise the script says so and goes on);
#   3. $OUT/PAPER_SCALE.md from both (python -m gdflows.experiments.paper_scale, the same writer as
#      `gdflows reproduce --scale paper`), with the device named; tables and figures in $OUT/eos_conv/ and $OUT/compare_full/.
# Each command runs under its own time limit (SIGTERM first, which gdflows takes as Ctrl-C, so a run keeps what it computed); a command cut
# short is reported from what it reached, and PAPER_SCALE.md says it is incomplete.
#
# Usage, from anywhere:   OUT=/path/to/results bash benchmarks/paper_scale_device.sh
# Needs Python 3.12 with JAX (a CUDA build), optax, diffrax, equinox, matplotlib and rich. Wheels of the
# rest (tyro, docstring-parser, typeguard, ...) in .whl/ are installed into /tmp/site without a registry;
# Fashion-MNIST is read from .data/fashion_mnist/ when that folder exists, else from Debian's folder.
# GDFLOWS_PAPER_TINY=1 shrinks everything (any device, a few minutes on a CPU): a check that it runs.
set -u -o pipefail
OUT=${OUT:?set OUT to the folder for the results}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=paper_scale
# shellcheck source=benchmarks/device_env.sh
source "$ROOT/benchmarks/device_env.sh"
DATA=()
[ -d .data/fashion_mnist ] && DATA=(--net.data-dir "$ROOT/.data/fashion_mnist")

if [ "${GDFLOWS_PAPER_TINY:-0}" = 1 ]; then
  EOS=(eos-conv --models vgg --vgg-lrs 0.1 --seeds 0 --net.n-train 40 --net.n-test 20 --net.width 1 --steps 30 --log-every 10
    --k 1 --tol 1e-5 --max-hvps 12)
  COMPARE=(compare-optimizers --quick --models mlp --regimes full)
  EOS_LIMIT=900 COMPARE_LIMIT=600
else
  EOS=(eos-conv --size accelerator)
  COMPARE=(compare-optimizers --scale full)
  EOS_LIMIT=270 COMPARE_LIMIT=150
fi

limited() {  # limited SECONDS ARGS...: gdflows ARGS under a time limit (SIGTERM, then SIGKILL 20 s later)
  local limit=$1
  shift
  timeout --signal=TERM --kill-after=20 "$limit" "$PY" -m gdflows.experiments.cli "$@"
}

say "eos-conv: ${EOS[*]} (limit ${EOS_LIMIT} s)"
limited "$EOS_LIMIT" "${EOS[@]}" "${DATA[@]}" --out "$OUT/eos_conv" 2>&1 | tee "$OUT/eos_conv.log" | tail -n 20
say "eos-conv exit status ${PIPESTATUS[0]}"

say "compare: ${COMPARE[*]} (limit ${COMPARE_LIMIT} s)"
limited "$COMPARE_LIMIT" "${COMPARE[@]}" --out "$OUT/compare_full" 2>&1 | tee "$OUT/compare.log" | tail -n 20
status=${PIPESTATUS[0]}
say "compare exit status $status"
if [ "$status" = 2 ]; then
  echo "gdflows ${COMPARE[*]} was refused (see $OUT/compare.log): this version of gdflows may not have" \
    "compare-optimizers --scale full yet; PAPER_SCALE.md says so and the rest goes on." | tee -a "$OUT/TIMINGS.txt"
fi

$PY -m gdflows.experiments.paper_scale "$OUT" "${COMPARE[@]}" 2>&1 | tail -n 5
say "done: $OUT/PAPER_SCALE.md"
