#!/usr/bin/env bash
# Peak RSS per rank of the GPT sample at ZeRO stages 0-3 (+ zero-init, + offload_optimizer) on 2 and 4 ranks, next to
# the engine's model-state bytes, the estimator's prediction and the runtime baseline (the same process with a tiny
# model), with the issue-16 bound: peak RSS - baseline <= 1.25 x (model states + stage3_max_live_parameters bytes).
# Every stage runs the same memory-conscious config: ZeRO-3's gather limits and reduce_bucket_size 5e6 (the default,
# 5e8, would make one bucket of the whole 52.6M model's gradients at stage 0 and stage 3 alike, as DeepSpeed's does).
# Usage: benchmarks/zero-memory.sh [RANKS...]   (default: 2 4). Builds Release first. Prints a Markdown table.
set -euo pipefail
cd "$(dirname "$0")/.."
dotnet build -c Release samples/Gpt/Gpt.csproj -v q -nologo >/dev/null
dotnet build -c Release src/DeepSpeedSharp.Cli -v q -nologo >/dev/null
DSS=src/DeepSpeedSharp.Cli/bin/Release/net10.0/dss.dll
GPT=samples/Gpt/bin/Release/net10.0/Gpt.dll
MODEL="--vocab 8192 --d-model 512 --layers 14 --heads 8 --seq 64 --steps 3 --warmup-steps 1"
TINY="--vocab 64 --d-model 16 --layers 1 --heads 1 --seq 64 --steps 3 --warmup-steps 1"
PARAMS=52555776; LARGEST=$((8192 * 512)); LIVE=10000000
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
config() { # stage, extra zero keys
  echo "{\"train_micro_batch_size_per_gpu\": 2, \"steps_per_print\": 1000, \"optimizer\": {\"type\": \"AdamW\", \"params\": {\"lr\": 1e-4}},
   \"zero_optimization\": {\"stage\": $1, \"stage3_max_live_parameters\": $LIVE, \"stage3_prefetch_bucket_size\": 5e6, \"stage3_max_reuse_distance\": 1e7, \"reduce_bucket_size\": 5e6 $2}}" > "$work/c.json"
}
run() { # ranks, model flags -> "peak_mib model_state_bytes"
  local log="$work/run.log" port=$((20000 + RANDOM % 20000))
  OMP_NUM_THREADS=1 dotnet $DSS launch --num_gpus "$1" --master_port $port $GPT $2 --deepspeed_config "$work/c.json" > "$log" 2>&1 || { cat "$log" >&2; exit 1; }
  local s; s=$(grep '\[rank 0\] gpt: summary' "$log")
  python3 -c 'import json,sys; d=json.loads(sys.argv[1].split("summary ",1)[1]); print(d["peak_rss_mib"], d["parameter_bytes"]+d["gradient_bytes"]+d["optimizer_state_bytes"])' "$s"
}
estimate() { # ranks, stage, offload flag -> bytes
  dotnet $DSS estimate --params $PARAMS --largest-layer $LARGEST --ranks "$1" --stage "$2" --config "$work/c.json" |
    python3 -c 'import sys
for l in sys.stdin:
    f=l.split()
    if f and f[0]==sys.argv[1] and f[1]==sys.argv[2]: print(int(float(f[8])*1e9))' "$2" "$3"
}
mib() { python3 -c "print(f'{$1/1048576:.1f}')"; }
echo "| ranks | setup | peak RSS (MiB) | − baseline | model states (MiB) | estimate (MiB) | bound 1.25×(states + live) | met | ÷ stage 0 peak |"
echo "|---|---|---|---|---|---|---|---|---|"
for R in "${@:-2 4}"; do
  config 3 ""; read -r base _ < <(run "$R" "$TINY")
  stage0=0
  for setup in "0" "1" "2" "3" "3 zero-init" "3 offload_optimizer"; do
    set -- $setup; stage=$1; extra=""; flags="$MODEL"; off=none
    [ "${2:-}" = zero-init ] && flags="$MODEL --zero-init"
    [ "${2:-}" = offload_optimizer ] && { extra=', "offload_optimizer": {"device": "cpu"}'; off=optimizer; }
    config "$stage" "$extra"
    read -r peak states < <(run "$R" "$flags")
    est=$(estimate "$R" "$stage" "$off")
    [ "$stage" = 0 ] && stage0=$peak
    live=0; [ "$stage" = 3 ] && live=$((LIVE * 4))
    bound=$(python3 -c "print(f'{1.25*($states+$live)/1048576:.0f}')")
    met=$(python3 -c "print('yes' if $peak-$base <= 1.25*($states+$live)/1048576 else 'no')")
    ratio=$(python3 -c "print(f'{$peak/$stage0:.2f}')")
    echo "| $R | stage $setup | $peak | $((peak - base)) | $(mib "$states") | $(mib "$est") | $bound | $met | $ratio |"
  done
  echo "| $R | baseline (tiny model, stage 3) | $base | | | | | | |"
done
