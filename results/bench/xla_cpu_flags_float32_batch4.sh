#!/bin/bash
# XLA:CPU flags and convolution forms for the float32 JAX train step, batch 4, 360x480, width 1,
# each a fresh process (bench.py's step probe), two rounds. "none" is XLA's default: the
# probe would otherwise add run.py's own float32 flag (cli.XLA_CPU_FLAGS), so it is set empty.
cd "$(dirname "$0")/../.."
export GLIBC_TUNABLES=glibc.malloc.hugetlb=1
probe() { # flags forms dtype
  XLA_FLAGS="$1" timeout 400 python experiments/bench.py --step_probe=jax --dtypes=$3 --batch_sizes=4 --conv_forms=$2 --probe_steps=3 2>/dev/null | grep step_seconds || echo "step_seconds=failed"
}
for round in 1 2; do
  for cfg in "--xla_cpu_experimental_ynn_fusion_type=|tuned|float32" "--xla_cpu_use_onednn=true --xla_cpu_experimental_ynn_fusion_type=|tuned|float32" "--xla_cpu_use_onednn=true --xla_cpu_experimental_ynn_fusion_type=|native|float32" "--xla_cpu_experimental_ynn_fusion_type=|native|float32" "--xla_cpu_experimental_ynn_fusion_type=dot|tuned|float32" "--xla_cpu_experimental_xnn_graph_fusion_mode=XNN_GRAPH_FUSION_MODE_GREEDY --xla_cpu_experimental_ynn_fusion_type=|tuned|float32"; do
    IFS='|' read flags forms dtype <<< "$cfg"
    echo "round=$round flags=${flags:-none} forms=$forms dtype=$dtype $(probe "$flags" $forms $dtype)"
  done
done
