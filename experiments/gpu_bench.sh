#!/usr/bin/env bash
# The GPU benchmarks of README "Performance" in one call (a lent GPU is short), most wanted
# first; a part starts only while BUDGET seconds are not spent and is cut at what is left:
#   1. eager: the train-step table at 360x480, batch 4 and 16: JAX float32 (TF32
#      convolutions, JAX's default on GPUs) and bfloat16 against PyTorch eager, float32
#      (cuDNN's TF32 default) and autocast bfloat16, each also channels-last (about 40 s with
#      JAX's compilation cache warm, over 2 minutes cold);
#   2. compiled: the same against torch.compile's default mode (about 30-60 s to compile
#      each);
#   3. tests: the fast-path tests on the GPU in one process (every conv form against the
#      plain reference, in full float32, and the bfloat16 forms; about 130 s);
#   4. autotune: torch.compile max-autotune, one process per precision and batch (on an H200
#      with 16 cores: bfloat16 at batch 4 compiled in 166 s, float32 not within 290 s);
#   5. loss: the loss kernel and the train step's compile time.
# Each torch.compile configuration is compiled in the timed process (its first step's seconds
# are in the JSON). Needs only jax, flax, optax, torch, pytest (no TensorFlow). JSON under $OUT.
# PARTS picks parts by name (eager, compiled, tests, autotune, loss; default all), AUTOTUNE the
# max-autotune runs as dtype:batch (default "bfloat16:4 float32:4"), so that a call can be
# spent on what an earlier one left, e.g. PARTS=autotune AUTOTUNE="float32:4 bfloat16:16".
#   OUT=results/bench/gpu_h200 bash experiments/gpu_bench.sh
set -u
OUT=${OUT:-gpu_bench_results}
BUDGET=${BUDGET:-560}
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
export XLA_PYTHON_CLIENT_MEM_FRACTION=0.45  # leave PyTorch room in the same process
export JAX_COMPILATION_CACHE_DIR=/tmp/fcn_iou_jax_cache  # JAX's steps compiled once per call
export JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
PYTHON=${PYTHON:-python3}
PARTS=${PARTS:-eager,compiled,tests,autotune,loss}
AUTOTUNE=${AUTOTUNE:-bfloat16:4 float32:4}
for name in ${PARTS//,/ }; do
  case $name in
    eager | compiled | tests | autotune | loss) ;;
    *) echo "error: PARTS: no part '$name' (eager, compiled, tests, autotune, loss)" >&2; exit 2 ;;
  esac
done
for run in $AUTOTUNE; do
  if [[ ! $run =~ ^(float32|bfloat16):[1-9][0-9]*$ ]]; then
    echo "error: AUTOTUNE: '$run' is not dtype:batch (float32:4, bfloat16:16)" >&2; exit 2
  fi
done
mkdir -p "$OUT"
TABLE=("$PYTHON" experiments/bench.py --only=train_step --repeats=20 --dtypes=float32,bfloat16)
EAGER=float32,bfloat16,float32+channels_last,bfloat16+channels_last

part() {  # part NAME LIMIT_SECONDS COMMAND...: COMMAND, if PARTS names NAME, for at most
  local name=$1 limit=$2 left=$((BUDGET - SECONDS))  # LIMIT or what is left
  shift 2
  [[ ",$PARTS," == *",$name,"* ]] || return 0
  if ((left < 30)); then echo "skipped, ${left} s left: $*"; return; fi
  echo "# [${SECONDS} s] $*"
  timeout $((limit < left ? limit : left)) "$@"
  echo "# [${SECONDS} s] exit $?"
}

nvidia-smi -L
"$PYTHON" -c "import jax, flax, optax, torch; print('jax', jax.__version__, 'flax', \
flax.__version__, 'optax', optax.__version__, 'torch', torch.__version__, jax.devices())"
part eager 240 "${TABLE[@]}" --batch_sizes=4,16 --torch_dtypes=$EAGER --out="$OUT/eager.json"
part compiled 240 "${TABLE[@]}" --batch_sizes=4,16 \
  --torch_dtypes=float32+default,bfloat16+default --out="$OUT/compiled.json"
JAX_DEFAULT_MATMUL_PRECISION=highest part tests 150 "$PYTHON" -m pytest -q -x -n 0 \
  -p no:cacheprovider tests/test_fast_path.py tests/test_mixed_precision.py \
  tests/test_convolution.py tests/test_pooling.py tests/test_response_norm.py tests/test_dropout.py
for run in $AUTOTUNE; do
  dtype=${run%:*} batch=${run#*:}
  part autotune 400 "${TABLE[@]/--dtypes=*/--dtypes=$dtype}" --batch_sizes="$batch" \
    --torch_dtypes="$dtype+max-autotune" --out="$OUT/autotuned_${dtype}_batch${batch}.json"
done
part loss 60 "$PYTHON" experiments/bench.py --only=loss,compile --batch_sizes=4 --repeats=10 \
  --out="$OUT/loss_compile.json"
