#!/usr/bin/env bash
# The largest GPT that trains 3 steps with 2 ranks on this machine at a ZeRO setup, found by doubling the layers at
# width 1024 (vocab 8192, seq 64, micro-batch 1). A run "fits" when it finishes while the ranks' summed RSS stays under
# the budget (default 20 GiB of the machine's 24, so the kernel's OOM killer never has to choose); a watchdog stops it
# otherwise. Prints one line per run and the largest that fit.
# Usage: benchmarks/zero-scale.sh SETUP [BUDGET_GIB] [START_LAYERS]   SETUP: stage0 | stage3 | stage3-offload
set -uo pipefail
cd "$(dirname "$0")/.."
setup=${1:?stage0, stage3 or stage3-offload}; budget_kib=$(( ${2:-20} * 1024 * 1024 )); layers=${3:-4}
dotnet build -c Release samples/Gpt/Gpt.csproj -v q -nologo >/dev/null && dotnet build -c Release src/DeepSpeedSharp.Cli -v q -nologo >/dev/null || exit 1
DSS=src/DeepSpeedSharp.Cli/bin/Release/net10.0/dss.dll; GPT=samples/Gpt/bin/Release/net10.0/Gpt.dll
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
# reduce_bucket_size 5e7 at every stage: with the default 5e8, ZeRO-3's two gradient slots alone would take 3 GB per rank
# at 823 M parameters (DeepSpeed allocates the 5e8 too); stage 0's bucket is then 5e7 elements as well.
case $setup in
  stage0) zero='"stage": 0, "reduce_bucket_size": 5e7'; extra="" ;;
  stage3) zero='"stage": 3, "stage3_max_live_parameters": 1e8, "stage3_prefetch_bucket_size": 5e7, "reduce_bucket_size": 5e7'; extra="--zero-init" ;;
  stage3-offload) zero='"stage": 3, "stage3_max_live_parameters": 1e8, "stage3_prefetch_bucket_size": 5e7, "reduce_bucket_size": 5e7, "offload_optimizer": {"device": "cpu"}'; extra="--zero-init" ;;
  *) echo "unknown setup '$setup'; use stage0, stage3 or stage3-offload" >&2; exit 2 ;;
esac
echo "{\"train_micro_batch_size_per_gpu\": 1, \"steps_per_print\": 1000, \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-4}}, \"zero_optimization\": {$zero}}" > "$work/c.json"
ranks_rss() { # summed VmRSS (KiB) of every descendant of $1
  local total=0 p
  for p in $(pgrep -P "$1"; for c in $(pgrep -P "$1"); do pgrep -P "$c"; done); do
    local v; v=$(awk '/VmRSS/ {print $2}' /proc/$p/status 2>/dev/null) # empty when the process just ended
    total=$(( total + ${v:-0} ))
  done
  echo $total
}
best=""
while true; do
  log="$work/l$layers.log"; start=$(date +%s)
  OMP_NUM_THREADS=1 dotnet $DSS launch --num_gpus 2 --master_port $((20000 + RANDOM % 20000)) $GPT --vocab 8192 --d-model 1024 \
    --layers $layers --heads 16 --seq 64 --steps 3 --warmup-steps 1 $extra --deepspeed_config "$work/c.json" > "$log" 2>&1 &
  pid=$!; peak=0; over=0
  while kill -0 $pid 2>/dev/null; do
    rss=$(ranks_rss $pid); (( rss > peak )) && peak=$rss
    if (( rss > budget_kib )); then over=1; pkill -TERM -P $pid; kill -TERM $pid; sleep 3; pkill -KILL -P $pid; kill -KILL $pid 2>/dev/null; break; fi
    sleep 0.5
  done
  wait $pid; rc=$?
  params=$(grep -o 'gpt: [0-9]* parameters' "$log" | head -1 | grep -o '[0-9]*')
  rank0=$(grep -o 'peak RSS [0-9]* MiB' "$log" | tail -1)
  if (( over == 0 && rc == 0 )); then
    echo "$setup layers $layers: ${params:-?} parameters, fits: summed peak RSS $((peak / 1024)) MiB (rank 0 $rank0), $(( $(date +%s) - start )) s"
    best="layers $layers, ${params:-?} parameters, summed peak RSS $((peak / 1024)) MiB"
    layers=$(( layers * 2 ))
  else
    why=$([ $over = 1 ] && echo "ranks' RSS passed the ${2:-20} GiB budget" || echo "exit code $rc: $(grep -m1 -i 'error' "$log")")
    echo "$setup layers $layers: ${params:-?} parameters, does not fit: $why (after $(( $(date +%s) - start )) s)"
    break
  fi
done
echo "largest that fits ($setup): ${best:-none}"
