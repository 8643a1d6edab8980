# The setting-up both accelerator scripts share (paper_scale_device.sh, conv_evidence_device.sh); sourced with
# OUT, ROOT and NAME (the script's name, for its log lines) set. It enters the repository, makes OUT absolute,
# defines PY and `say` (a timestamped line, also appended to $OUT/TIMINGS.txt), installs the wheels of .whl/
# into /tmp/site without a registry (the device has none), puts src/ on PYTHONPATH, shares one XLA compilation
# cache, keeps float32 matmuls at float32 precision (a GPU's default is TF32), and logs the device and JAX.
cd "$ROOT" || exit 1
PY=${PYTHON:-python3}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
START=$(date +%s)
say() { echo "[$NAME $(($(date +%s) - START)) s] $*" | tee -a "$OUT/TIMINGS.txt"; }

if compgen -G ".whl/*.whl" >/dev/null; then
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || { echo "installing the wheels in .whl/ failed" >&2; exit 1; }
  export PYTHONPATH=/tmp/site:$ROOT/src
else
  export PYTHONPATH=$ROOT/src${PYTHONPATH:+:$PYTHONPATH}
fi
export JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-/tmp/gdflows-xla}
export JAX_DEFAULT_MATMUL_PRECISION=highest  # float32 means float32: no TF32 in the convolutions and matmuls

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } \
  | sed 's/^/device: /' | tee -a "$OUT/TIMINGS.txt"
$PY -c "import jax; print('jax', jax.__version__, jax.devices())" 2>&1 | tee -a "$OUT/TIMINGS.txt"
