#!/usr/bin/env bash
# Run job files (training.queue) side by side on a GPU machine that has JAX but no TensorFlow and no network,
# for at most SECONDS, then pack what they installed into OUTDIR as tar parts of at most 15 MiB, with the logs.
#
#   deploy/gpu_queue.sh mnist.npz OUTDIR 480 deploy/jobs/gpu-gan.txt:8 deploy/jobs/gpu-vae.txt:6:highest
#
# Each JOBS:PARALLEL[:PRECISION] runs its own queue (workdir runs/<file name>); PRECISION sets
# JAX_DEFAULT_MATMUL_PRECISION for it: JAX's default computes float32 convolutions and matmuls in TF32 on NVIDIA
# GPUs, `highest` keeps float32. Each manifest records which (hardware.float32_matmul).
# At the deadline each queue stops its own jobs (SIGTERM; nothing else on the machine is touched); they are left
# out, and their checkpoints stay on that machine.
# Replicates are packed without GAN weights and progress frames (.gitignore keeps those out of the repo);
# served models whole (training/pack.py). Unpack in the repository with `cat OUTDIR/store.tar.gz.* | tar -xz`.
set -uo pipefail
data=$1 out=$2 budget=$3
shift 3
PY=${PYTHON:-python3}
export KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
mkdir -p "$out"
# One BLAS/OpenMP pool per job, sized so the jobs together use the cores once: the evaluations (NumPy on the CPU)
# ran 16 threads each, 9 side by side, and none finished in 150 s in the first GPU session.
total=0
for spec in "$@"; do IFS=: read -r _ parallel _ <<< "$spec"; total=$(( total + ${parallel:-8} )); done
threads=$(( $(nproc) / total )); [ "$threads" -ge 1 ] || threads=1
export OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads MKL_NUM_THREADS=$threads
echo "$total jobs side by side, $threads BLAS threads each"
$PY -c "import jax, keras, numpy; print('jax', jax.__version__, 'keras', keras.__version__, 'numpy', numpy.__version__, jax.devices())" || exit 1
stamp=$(mktemp) && sleep 1
start=$(date +%s)
pids=()
for spec in "$@"; do
  IFS=: read -r jobs parallel precision <<< "$spec"
  name=$(basename "$jobs" .txt)
  ( [ -n "${precision:-}" ] && export JAX_DEFAULT_MATMUL_PRECISION=$precision
    exec timeout --signal=TERM --kill-after=60 "$budget" $PY -m training.queue "$jobs" --parallel "${parallel:-8}" --data "$data" --store models_store --workdir "runs/$name" \
      > "runs-$name.out" 2>&1 ) &
  pids+=($!)
done
wait "${pids[@]}"
echo "queues stopped after $(( $(date +%s) - start )) s"
# Statistics over every replicate that finished (metrics written), whatever the queues managed.
$PY -c "from pathlib import Path; from training.replicates import write_statistics; write_statistics(Path('models_store'))" || true
$PY -m training.pack "$out" --since "$stamp" --logs 'runs/*/queue/*.log' 'runs-*.out'
cat runs-*.out
for f in runs/*/queue/*.log; do echo "== $f: $(head -1 "$f" | cut -c1-90)"; grep -E "epoch|installed|Error" "$f" | tail -2 | cut -c1-220; done
