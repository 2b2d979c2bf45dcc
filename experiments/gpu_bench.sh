#!/usr/bin/env bash
# The GPU benchmarks of README "Performance" in one call (a lent GPU is short), most wanted
# first; a part starts only while BUDGET seconds are not spent and is cut at what is left:
#   1. the train-step table at 360x480, batch 4 and 16: JAX float32 (TF32 convolutions, JAX's
#      default on GPUs) and bfloat16 against PyTorch eager, float32 (cuDNN's TF32 default)
#      and autocast bfloat16, each also channels-last (about 40 s with JAX's compilation
#      cache warm, over 2 minutes cold);
#   2. the same against torch.compile's default mode (about 30-60 s to compile each);
#   3. the fast-path tests on the GPU in one process (every conv form against the plain
#      reference, in full float32, and the bfloat16 forms; about 130 s);
#   4. torch.compile max-autotune at batch 4, one process per precision (on an H200 with 16
#      cores: bfloat16 compiled in 166 s, float32 not within 290 s);
#   5. the loss kernel and the train step's compile time.
# Each torch.compile configuration is compiled in the timed process (its first step's seconds
# are in the JSON). Needs only jax, flax, optax, torch, pytest (no TensorFlow). JSON under $OUT.
#   OUT=results/bench/gpu_h200 bash experiments/gpu_bench.sh
set -u
OUT=${OUT:-gpu_bench_results}
BUDGET=${BUDGET:-560}
mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45  # leave PyTorch room in the same process
export JAX_COMPILATION_CACHE_DIR=/tmp/fcn_iou_jax_cache  # JAX's steps compiled once per call
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
PYTHON=${PYTHON:-python3}
TABLE=("$PYTHON" experiments/bench.py --only=train_step --repeats=20 --dtypes=float32,bfloat16)
EAGER=float32,bfloat16,float32+channels_last,bfloat16+channels_last

part() {  # part LIMIT_SECONDS COMMAND...: runs COMMAND for at most LIMIT or what is left
  local limit=$1 left=$((BUDGET - SECONDS))
  shift
  if ((left < 30)); then echo "skipped, ${left} s left: $*"; return; fi
  echo "# [${SECONDS} s] $*"
  timeout $((limit < left ? limit : left)) "$@"
  echo "# [${SECONDS} s] exit $?"
}

nvidia-smi -L
"$PYTHON" -c "import jax, flax, optax, torch; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())"
part 240 "${TABLE[@]}" --batch_sizes=4,16 --torch_dtypes=$EAGER --out="$OUT/eager.json"
part 240 "${TABLE[@]}" --batch_sizes=4,16 --torch_dtypes=float32+default,bfloat16+default \
  --out="$OUT/compiled.json"
JAX_DEFAULT_MATMUL_PRECISION=highest part 150 "$PYTHON" -m pytest -q -x -n 0 \
  -p no:cacheprovider tests/test_fast_path.py tests/test_mixed_precision.py \
  tests/test_convolution.py tests/test_pooling.py tests/test_response_norm.py tests/test_dropout.py
for dtype in bfloat16 float32; do
  part 400 "${TABLE[@]/--dtypes=*/--dtypes=$dtype}" --batch_sizes=4 \
    --torch_dtypes=$dtype+max-autotune --out="$OUT/autotuned_${dtype}_batch4.json"
done
part 60 "$PYTHON" experiments/bench.py --only=loss,compile --batch_sizes=4 --repeats=10 \
  --out="$OUT/loss_compile.json"
