#!/usr/bin/env bash
# The GPU checks and benchmarks of README "Performance", in one call (a lent GPU is short):
#   1. the loss kernel and the train step's compile time (without the compilation cache);
#   2. the fast-path tests on the GPU (the model's function in both conv forms, in full
#      float32: JAX uses TF32 for float32 convolutions on GPUs by default);
#   3. the train-step table at 360x480, JAX float32/bfloat16 vs PyTorch eager float32/autocast
#      bfloat16 on CUDA, with device memory, batch 1, 4 and 16;
#   4. batch 4 again with --conv_forms=native (one cuDNN convolution per layer), for the choice
#      of the default forms (NATIVE_FORMS=0 skips it).
# Needs only jax, flax, optax, torch, pytest (no TensorFlow). Writes JSON under $OUT.
#   OUT=results/bench/gpu_h100 bash experiments/gpu_bench.sh
set -u
OUT=${OUT:-gpu_bench_results}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45  # leave PyTorch room in the same process
PYTHON=${PYTHON:-python3}
CACHE=(env JAX_COMPILATION_CACHE_DIR=/tmp/fcn_iou_jax_cache  # reuse compiles between commands
       JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0)
BENCH=("${CACHE[@]}" "$PYTHON" experiments/bench.py --only=train_step --repeats=20
       --dtypes=float32,bfloat16 --torch_dtypes=float32,bfloat16)

nvidia-smi -L
"$PYTHON" -c "import jax, flax, optax, torch; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())"
timeout 60 "$PYTHON" experiments/bench.py --only=loss,compile --batch_sizes=4 --repeats=10 \
  --out="$OUT/loss_compile_gpu.json"
JAX_DEFAULT_MATMUL_PRECISION=highest timeout 150 "$PYTHON" -m pytest -q -x -p no:cacheprovider \
  tests/test_fast_path.py tests/test_mixed_precision.py 2>&1 | tail -3
timeout 200 "${BENCH[@]}" --batch_sizes=1,4 --memory --out="$OUT/train_step_gpu.json"
timeout 100 "${BENCH[@]}" --batch_sizes=16 --memory --out="$OUT/train_step_gpu_batch16.json"
[ "${NATIVE_FORMS:-1}" = 0 ] || timeout 80 "${BENCH[@]}" --batch_sizes=4 --conv_forms=native \
  --out="$OUT/train_step_gpu_native_forms.json"
