#!/usr/bin/env bash
# Collectives across emulated hosts: `dss bench comm` on every (link rate, hosts × ranks, backend, op), one size per run,
# with the bus bandwidth (nccl-tests' busbw) and what the busiest link carried against its rate (the link's use).
# Usage: benchmarks/cluster/collectives.sh [--rates "1gbit 10gbit"] [--layouts "2x2 4x1"] [--backends "hierarchical tcp"]
#          [--ops "all_reduce all_gather reduce_scatter"] [--size 64M] [--iters 5] [--cc cubic] [--dss "COMMAND"]
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
rates="1gbit 10gbit" layouts="2x2 4x1" backends="hierarchical tcp" ops="all_reduce all_gather reduce_scatter"
size=64M iters=5 cc=cubic dss=""
while (($#)); do
  case $1 in
    --rates) rates=$2 ;; --layouts) layouts=$2 ;; --backends) backends=$2 ;; --ops) ops=$2 ;;
    --size) size=$2 ;; --iters) iters=$2 ;; --cc) cc=$2 ;; --dss) dss=$2 ;;
    *) echo "collectives.sh: unknown option '$1' (see the top of $0)" >&2; exit 2 ;;
  esac
  shift 2
done
[[ -z $dss ]] && for dll in "$HERE"/../../src/DeepSpeedSharp.Cli/bin/{Release,Debug}/net10.0/dss.dll; do [[ -f $dll ]] && { dss="dotnet $(realpath "$dll")"; break; }; done
[[ -n $dss ]] || { echo "collectives.sh: build dss first (dotnet build -c Release src/DeepSpeedSharp.Cli) or pass --dss" >&2; exit 2; }
program=${dss##* } # the dss dll (or executable) is also the program each rank runs
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
echo "# $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; congestion control $cc; $size per op, $iters timed + 1 warm-up"
printf '%-7s %-6s %-13s %-15s %12s %10s %10s %9s\n' rate layout backend op time_us algbw_MBps busbw_MBps link_use
for rate in $rates; do
  bits=$(awk -v r="$rate" 'BEGIN { n = r + 0; m = r ~ /gbit/ ? 1e9 : r ~ /mbit/ ? 1e6 : 1; print n * m }')
  for layout in $layouts; do
    hosts=${layout%x*} slots=${layout#*x}
    for backend in $backends; do
      for op in $ops; do
        log=$work/run.log
        "$HERE/cluster.sh" run --hosts "$hosts" --slots "$slots" --rate "$rate" --cc "$cc" --dss "$dss" --counters "$work/links.json" -- \
          --master_port $((20000 + RANDOM % 20000)) --no_local_rank "$program" bench comm --backend "$backend" --op "$op" \
          --sizes "$size" --iters "$iters" --warmup 1 > "$log" 2>&1 || { echo "$rate $layout $backend $op: failed (log below)"; tail -5 "$log"; continue; }
        time_us=$(grep -A1 'time(us)' "$log" | tail -1 | awk '{print $(NF-2)}')
        # The busiest link's bytes per op (the warm-up op is in the count) against what the rate allows in the op's time.
        busiest=$(grep -o '"sent": [0-9]*' "$work/links.json" | awk '{ v[NR] = $2 } END { h = NR / 2; m = 0
          for (i = 1; i <= h; i++) if (v[h + i] - v[i] > m) m = v[h + i] - v[i]; print m }')
        awk -v rate="$rate" -v layout="$layout" -v be="$backend" -v op="$op" -v t="$time_us" -v size="$size" -v n=$((hosts * slots)) \
            -v b="$busiest" -v k=$((iters + 1)) -v bits="$bits" 'BEGIN {
          bytes = size + 0; u = size; sub(/^[0-9]+/, "", u); bytes *= u == "K" ? 1024 : u == "M" ? 1048576 : u == "G" ? 1073741824 : 1
          alg = bytes / (t / 1e6) / 1e6; f = op == "all_reduce" ? 2 * (n - 1) / n : (n - 1) / n
          printf "%-7s %-6s %-13s %-15s %12.0f %10.1f %10.1f %8.1f%%\n", rate, layout, be, op, t, alg, alg * f, 100 * (b / k) * 8 / (t / 1e6) / bits }'
      done
    done
  done
done
