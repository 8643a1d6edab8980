#!/usr/bin/env bash
# The conv-net evidence designs (docs/eos_conv, docs/eos_conv_ce, docs/track_conv) on one accelerator, in one
# go: their runs as parallel processes on the one GPU (each run is small; one process leaves the GPU idle):
#   * eos-conv, ResNet, MSE: one process per rate (0.021, 0.023, 0.025) and seed (0, 1, 2);
#   * eos-conv, VGG, cross-entropy: one process per rate (0.2, 0.25, 0.3) and seed (0, 1, 2);
#   * track on docs/track_conv's VGG (256 images) at h = 0.03: 10 starts in its two bursts of loss rises
#     (steps 1309-1329 and 2328-2353), two per process;
#   * DESIGNS=next instead: docs/eos_conv's VGG MSE design (rates 0.026, 0.028, 0.03, seeds 0-2) with --pf-step
#     (the PF's own one-step prediction at every diagnosis), one process per run. (Its ResNet runs of seeds 0
#     and 1 to the 30,000-step budget, once here, were finished on a CPU; h = 0.021 seed 0 to 40,000.)
#     --pf-step is dear: its one-step solve takes up to 31 field evaluations at a VGG edge state
#     (benchmarks/results/pf_step_accuracy.log), 26-70 CPU-s per diagnosis over a run on a 2-core CPU against
#     3.4 s without (52-129 CPU-minutes per run), so expect these processes to stop at LIMIT and resume in the
#     next session. Only the runs docs/eos_conv_pf_step has not finished (on the CPU); merge this folder's runs
#     into it (benchmarks/merge_run_folders.py: a run finished here replaces one unfinished there).
# The designs are the CPU-size ones (same data, nets, tolerances, float32 with matmuls at full float32
# precision), so a folder computed here merges with one computed on a CPU (eos-conv and track extend a run
# by more rates, seeds or starts; merge the folders and rerun the command to write the report).
# Every process runs under LIMIT seconds (SIGTERM first, which gdflows takes as Ctrl-C: a run keeps what it
# computed and resumes later; SIGINT would not do, since a script's background job ignores it).
# Results: $OUT/runs.tgz (every run folder), $OUT/logs.tgz, $OUT/TIMINGS.txt.
#
# Usage:   OUT=/path/to/results bash benchmarks/conv_evidence_device.sh
# Needs Python 3.12 with JAX (a CUDA build), optax, diffrax, equinox, matplotlib and rich; wheels of the rest
# in .whl/ (tyro, docstring-parser, typeguard, matfree); Fashion-MNIST in .data/fashion_mnist/ (or Debian's).
# GDFLOWS_TINY=1 shrinks every run (any machine, a few minutes on a CPU): a check that the script runs.
set -u -o pipefail
OUT=${OUT:?set OUT to the folder for the results}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NAME=conv_evidence
# shellcheck source=benchmarks/device_env.sh
source "$ROOT/benchmarks/device_env.sh"
WORK=${WORK:-/tmp/conv_evidence}
mkdir -p "$WORK/runs" "$WORK/logs"
[ -d .data/fashion_mnist ] && export GDFLOWS_DATA=$ROOT/.data  # holds fashion_mnist/
export XLA_PYTHON_CLIENT_PREALLOCATE=false   # many processes share the GPU
LIMIT=${LIMIT:-470}
DESIGNS=${DESIGNS:-first}  # first: the designs above; next: the --pf-step VGG design

RESNET_LRS=(0.021 0.023 0.025)
CE_LRS=(0.2 0.25 0.3)
SEEDS=(0 1 2)
TRACK_STARTS=("1300 1305" "1310 1315" "1320 1325" "1330 2330" "2340 2350")
EOS=()
TRACK=(--lr 0.03 --train-steps 2380 --horizon 10 --rtol 1e-4 --atol 1e-7 --flows NGF PF PF+NP central quadratic
  --net.dataset fashion_mnist --net.model vgg --net.width 4 --net.depth 1 --net.downsample 2 --net.classes
  --net.n-train 256 --net.n-test 100 --net.curvature-size 256 --net.dtype float32 --net.seed 1)
if [ "${GDFLOWS_TINY:-0}" = 1 ]; then
  EOS=(--net.n-train 40 --net.n-test 20 --net.width 1 --steps 30 --log-every 10 --edge-diagnoses 4
    --tol 1e-5 --max-hvps 12)
  TRACK=(--lr 0.03 --train-steps 8 --horizon 2 --rtol 1e-4 --atol 1e-7 --net.dataset fashion_mnist
    --net.model vgg --net.width 1 --net.n-train 40 --net.n-test 20 --net.dtype float32 --net.seed 1)
  RESNET_LRS=(0.021)
  CE_LRS=(0.2)
  SEEDS=(0)
  TRACK_STARTS=("2 3" "4 5")
  LIMIT=600
fi

job() {  # job NAME ARGS...: gdflows ARGS under LIMIT seconds (SIGTERM, then SIGKILL 20 s later), logged
  local name=$1 t0=$(date +%s)
  shift
  timeout --signal=TERM --kill-after=20 "$LIMIT" "$PY" -m gdflows.experiments.cli "$@" >"$WORK/logs/$name.log" 2>&1
  say "$name: exit $? after $(($(date +%s) - t0)) s"
}

if [ "$DESIGNS" = next ]; then
  VGG_LRS=(0.026 0.028 0.03)
  PF_SEEDS=(0 1 2)
  DONE=$ROOT/docs/eos_conv_pf_step  # its finished runs (a .complete in the run's folder) are not run again
  [ "${GDFLOWS_TINY:-0}" = 1 ] && VGG_LRS=(0.03) && PF_SEEDS=(1) && DONE=$WORK/none
  for s in "${PF_SEEDS[@]}"; do
    for lr in "${VGG_LRS[@]}"; do
      [ -f "$DONE/vgg_lr${lr}_s$s/.complete" ] && say "vgg_lr${lr}_s$s: finished in $DONE" && continue
      job "pf_step_lr${lr}_s$s" eos-conv --models vgg --vgg-lrs "$lr" --seeds "$s" --pf-step "${EOS[@]}" \
        --out "$WORK/runs/pf_step_lr${lr}_s$s" &
    done
  done
  say "started $(jobs -p | wc -l) processes (limit $LIMIT s each)"
  wait
  tar czf "$OUT/runs.tgz" -C "$WORK/runs" . && tar czf "$OUT/logs.tgz" -C "$WORK/logs" .
  say "done: $(du -h "$OUT/runs.tgz" | cut -f1) of run folders"
  exit 0
fi

for s in "${SEEDS[@]}"; do
  for lr in "${RESNET_LRS[@]}"; do
    job "resnet_lr${lr}_s$s" eos-conv --models resnet --resnet-lrs "$lr" --seeds "$s" "${EOS[@]}" \
      --out "$WORK/runs/resnet_lr${lr}_s$s" &
  done
  for lr in "${CE_LRS[@]}"; do
    job "ce_lr${lr}_s$s" eos-conv --models vgg --vgg-lrs "$lr" --seeds "$s" --net.loss cross_entropy "${EOS[@]}" \
      --out "$WORK/runs/ce_lr${lr}_s$s" &
  done
done
for i in "${!TRACK_STARTS[@]}"; do
  # shellcheck disable=SC2086  # the pair of starts is two arguments
  job "track_$i" track "${TRACK[@]}" --starts ${TRACK_STARTS[$i]} --out "$WORK/runs/track_$i" &
done
say "started $(jobs -p | wc -l) processes (limit $LIMIT s each)"
wait
nvidia-smi --query-gpu=name,utilization.gpu,memory.used --format=csv,noheader 2>/dev/null | sed 's/^/after: /'
tar czf "$OUT/runs.tgz" -C "$WORK/runs" . && tar czf "$OUT/logs.tgz" -C "$WORK/logs" .
say "done: $(du -h "$OUT/runs.tgz" | cut -f1) of run folders"
