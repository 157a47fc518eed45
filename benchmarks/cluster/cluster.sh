#!/usr/bin/env bash
# An emulated cluster on this machine: K hosts, each a network namespace with its own address and its own /dev/shm (a
# mount namespace), joined by veth links to a bridge in a switch namespace of their own. Each link is shaped in both
# directions with tc (HTB at the rate; netem for the delay where the kernel has it). Addresses come only from
# 198.18.0.0/15 (RFC 2544's benchmarking range) and exist only inside these namespaces: the bridge has no address and no
# route, the machine's own namespace gets nothing, so every packet stays between namespaces this script created.
#
#   cluster.sh up [OPTIONS]          bring the hosts up (removing what an earlier, killed run left) and write a hostfile
#   cluster.sh down                  remove everything (stops any process still inside a host)
#   cluster.sh run [OPTIONS] -- ARGS...
#                                    up, then `dss launch --hostfile H --launcher pdsh --launcher_args "-R exec"
#                                    --node_wrapper W --master_addr 198.18.0.1 ARGS...`, then down (also on Ctrl-C);
#                                    prints the bytes each host's link carried during the launch
#   cluster.sh exec HOST COMMAND...  run COMMAND on an emulated host (e.g. exec dssc-h1 ip addr)
#   cluster.sh counters              bytes each host's link has sent and received so far
#   cluster.sh wrapper               the --node_wrapper words that enter a host (what `run` passes)
#
# OPTIONS: --hosts K (default 2) · --slots N ranks per host (default 2) · --rate RATE (tc units, default 1gbit) ·
#   --delay D one-way delay per link direction (default 0.1ms; needs sch_netem) · --preset 1g|10g (rate 1gbit or
#   10gbit) · --cc NAME each host's TCP congestion control (default cubic, Linux's default; bbr, reno) ·
#   --mtu M (default 1500) · --hostfile FILE (default /run/dssc/hostfile) · --counters FILE (run: write the link bytes
#   as JSON) · --dss "COMMAND" (run: how to start dss; default `dss` on PATH, else this clone's build)
# Needs root, iproute2 (ip netns, tc), util-linux (unshare, nsenter) and pdsh. One cluster at a time.
set -uo pipefail

PREFIX=dssc
STATE=/run/dssc
SWITCH=$PREFIX-sw
NET=198.18.0
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

hosts=2 slots=2 rate=1gbit delay=0.1ms cc=cubic mtu=1500 hostfile=$STATE/hostfile counters="" dss=""

say() { echo "cluster: $*" >&2; }
die() { say "$*"; exit 2; }

preflight() {
  [[ $(id -u) == 0 ]] || die "needs root (network and mount namespaces); run it as root or with sudo"
  ip netns list >/dev/null 2>&1 || die "needs iproute2's 'ip netns' (apt-get install iproute2) on a kernel with network namespaces"
  command -v unshare >/dev/null && command -v nsenter >/dev/null || die "needs unshare and nsenter (apt-get install util-linux)"
  command -v tc >/dev/null || die "needs tc (apt-get install iproute2)"
}

parse_options() {
  while (($#)); do
    case $1 in
      --hosts) hosts=${2:?--hosts needs a number}; shift 2 ;;
      --slots) slots=${2:?--slots needs a number}; shift 2 ;;
      --rate) rate=${2:?--rate needs a rate such as 1gbit}; shift 2 ;;
      --delay) delay=${2:?--delay needs a time such as 0.1ms, or 0}; shift 2 ;;
      --preset) case ${2:-} in 1g) rate=1gbit ;; 10g) rate=10gbit ;; *) die "--preset '${2:-}' is not known; use 1g or 10g" ;; esac; shift 2 ;;
      --mtu) mtu=${2:?--mtu needs a number}; shift 2 ;;
      --cc) cc=${2:?--cc needs a congestion control such as cubic}; shift 2 ;;
      --hostfile) hostfile=${2:?--hostfile needs a file}; shift 2 ;;
      --counters) counters=${2:?--counters needs a file}; shift 2 ;;
      --dss) dss=${2:?--dss needs a command}; shift 2 ;;
      --) shift; rest=("$@"); return ;;
      *) die "unknown option '$1' (see the top of $0)" ;;
    esac
  done
  rest=()
}

validate() {
  [[ $hosts =~ ^[0-9]+$ ]] && ((hosts >= 1 && hosts <= 200)) || die "--hosts '$hosts' must be a number from 1 to 200"
  [[ $slots =~ ^[0-9]+$ ]] && ((slots >= 1)) || die "--slots '$slots' must be a number of ranks per host, 1 or more"
  [[ $mtu =~ ^[0-9]+$ ]] && ((mtu >= 576 && mtu <= 65535)) || die "--mtu '$mtu' must be from 576 to 65535"
  [[ $rate =~ ^[0-9.]+([kmgt]?(bit|bps))$ ]] || die "--rate '$rate' is not a tc rate (e.g. 100mbit, 1gbit, 10gbit)"
  grep -qw -- "$cc" /proc/sys/net/ipv4/tcp_available_congestion_control ||
    die "--cc '$cc' is not available in this kernel (it has: $(cat /proc/sys/net/ipv4/tcp_available_congestion_control))"
  [[ $delay == 0 || $delay =~ ^[0-9.]+(us|ms|s)$ ]] || die "--delay '$delay' is not a time (e.g. 0, 50us, 0.1ms)"
}

host_name() { echo "$PREFIX-h$1"; }
host_addr() { echo "$NET.$(($1 + 1))"; }
wrapper() { echo "nsenter --net=/run/netns/%h --mount=$STATE/%h.mnt --"; }

# Bytes per second of a tc rate, for HTB's burst (1 ms of traffic, at least one 64 KiB GSO packet).
burst_bytes() {
  awk -v r="$1" 'BEGIN { n = r + 0; u = r; sub(/^[0-9.]+/, "", u); m = 1
    if (u ~ /^k/) m = 1e3; else if (u ~ /^m/) m = 1e6; else if (u ~ /^g/) m = 1e9; else if (u ~ /^t/) m = 1e12
    bps = (u ~ /bps$/) ? n * m : n * m / 8; b = int(bps / 1000); if (b < 65536 + 1514) b = 65536 + 1514; print b }'
}

down() {
  local ns pids f link
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$PREFIX-"); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    [[ -n $pids ]] && kill -KILL $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | cut -d@ -f1 | grep "^$PREFIX-"); do
    ip link del "$link" 2>/dev/null
  done
  if [[ -d $STATE ]]; then
    for f in "$STATE"/*.mnt; do [[ -e $f ]] || continue; umount "$f" 2>/dev/null; rm -f "$f"; done
    mountpoint -q "$STATE" && umount "$STATE" 2>/dev/null
    if [[ -f $STATE/allowed_cc ]]; then sysctl -qw net.ipv4.tcp_allowed_congestion_control="$(cat "$STATE/allowed_cc")"; rm -f "$STATE/allowed_cc"; fi
    rm -f "$STATE/hostfile" "$STATE/owner"
    rmdir "$STATE" 2>/dev/null
  fi
  return 0
}

# HTB at the rate on DEV's egress inside NS, with netem's delay below it when the kernel has netem.
shape() {
  local ns=$1 dev=$2 burst
  burst=$(burst_bytes "$rate")
  ip netns exec "$ns" tc qdisc add dev "$dev" root handle 1: htb default 1 || die "tc htb failed on $ns/$dev"
  ip netns exec "$ns" tc class add dev "$dev" parent 1: classid 1:1 htb rate "$rate" ceil "$rate" burst "$burst" cburst "$burst" quantum 65536 ||
    die "tc could not set rate '$rate' on $ns/$dev"
  if [[ $delay != 0 ]]; then
    ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: netem delay "$delay" limit 100000 2>/dev/null && return
    no_delay=1
  fi
  ip netns exec "$ns" tc qdisc add dev "$dev" parent 1:1 handle 10: pfifo limit 100000
}

up() {
  preflight; validate
  if [[ -f $STATE/owner ]] && kill -0 "$(cat "$STATE/owner")" 2>/dev/null; then
    die "another emulated cluster is in use (run by pid $(cat "$STATE/owner")); stop it, or remove it with '$0 down'"
  fi
  down
  mkdir -p "$STATE"
  mount --bind "$STATE" "$STATE" && mount --make-private "$STATE" || die "could not make $STATE a private mount point"
  ip netns add "$SWITCH" && ip -n "$SWITCH" link add br0 type bridge && ip -n "$SWITCH" link set br0 up &&
    ip -n "$SWITCH" link set lo up || die "could not create the switch namespace $SWITCH"
  no_delay=0
  # A namespace may pick only a congestion control the machine allows; add ours for the cluster's life (down restores it).
  local allowed; allowed=$(cat /proc/sys/net/ipv4/tcp_allowed_congestion_control)
  if ! grep -qw -- "$cc" <<< "$allowed"; then
    echo "$allowed" > "$STATE/allowed_cc"
    sysctl -qw net.ipv4.tcp_allowed_congestion_control="$allowed $cc" || die "could not allow congestion control '$cc' for the hosts"
  fi
  local i h
  for ((i = 0; i < hosts; i++)); do
    h=$(host_name $i)
    ip netns add "$h" || die "could not create network namespace $h"
    ip link add "$h-e" mtu "$mtu" type veth peer name "$h-s" mtu "$mtu" || die "could not create the veth pair of $h"
    ip link set "$h-e" netns "$h" name eth0 && ip link set "$h-s" netns "$SWITCH" name "h$i" || die "could not move the veth pair of $h"
    ip -n "$SWITCH" link set "h$i" master br0 && ip -n "$SWITCH" link set "h$i" up || die "could not attach $h to the bridge"
    ip netns exec "$h" sysctl -qw net.ipv4.tcp_congestion_control="$cc" || die "could not set $h's congestion control to '$cc'"
    ip -n "$h" addr add "$(host_addr $i)/24" dev eth0 && ip -n "$h" link set eth0 up && ip -n "$h" link set lo up ||
      die "could not give $h its address"
    shape "$h" eth0          # what the host sends
    shape "$SWITCH" "h$i"    # what it receives
    touch "$STATE/$h.mnt"
    unshare --mount="$STATE/$h.mnt" --propagation private sh -c 'mount -t tmpfs -o mode=1777 dssc-shm /dev/shm' ||
      die "could not give $h its own /dev/shm"
    echo "$h slots=$slots" >> "$STATE/hostfile.new"
  done
  mv "$STATE/hostfile.new" "$STATE/hostfile"
  [[ $hostfile != "$STATE/hostfile" ]] && cp "$STATE/hostfile" "$hostfile"
  ((no_delay)) && say "no link delay: this kernel has no sch_netem (CONFIG_NET_SCH_NETEM), so links keep veth's own latency; the rate applies"
  say "$hosts hosts ($(host_addr 0)..$(host_addr $((hosts - 1)))), $slots slots each, links $rate, $cc$( ((no_delay)) || [[ $delay == 0 ]] || echo ", delay $delay"), mtu $mtu; hostfile $hostfile"
}

# One JSON object: each host's link bytes (sent = eth0 TX, received = eth0 RX).
counters() {
  local ns first=1
  printf '{'
  for ns in $(ip netns list | awk '{print $1}' | grep "^$PREFIX-h" | sort -V); do
    ip -n "$ns" -s link show dev eth0 | awk -v ns="$ns" -v first=$first '
      /RX:/ { getline; rx = $1 } /TX:/ { getline; tx = $1 }
      END { printf "%s\"%s\": {\"sent\": %s, \"received\": %s}", first ? "" : ", ", ns, tx, rx }'
    first=0
  done
  printf '}\n'
}

dss_command() {
  if [[ -n $dss ]]; then echo "$dss"; return; fi
  if command -v dss >/dev/null; then echo dss; return; fi
  local dll
  for dll in "$REPO"/src/DeepSpeedSharp.Cli/bin/{Release,Debug}/net10.0/dss.dll; do
    [[ -f $dll ]] && { echo "dotnet $dll"; return; }
  done
  die "no dss found: install the tool (README), build this clone (dotnet build src/DeepSpeedSharp.Cli), or pass --dss"
}

run() {
  ((${#rest[@]})) || die "run needs the program after '--' (e.g. -- Gpt.dll --steps 20)"
  command -v pdsh >/dev/null || die "needs pdsh (apt-get install pdsh)"
  local cmd; cmd=$(dss_command) || exit 2
  trap 'down' EXIT
  up || exit 2
  echo $$ > "$STATE/owner"
  trap 'exit 130' INT
  trap 'exit 143' TERM
  local before after code
  before=$(counters)
  # shellcheck disable=SC2086 # the dss command is words
  $cmd launch --hostfile "$hostfile" --launcher pdsh --launcher_args "-R exec" --node_wrapper "$(wrapper)" \
    --master_addr "$(host_addr 0)" "${rest[@]}"
  code=$?
  after=$(counters)
  say "link bytes before: $before"
  say "link bytes after:  $after"
  [[ -n $counters ]] && printf '{"before": %s, "after": %s}\n' "$before" "$after" > "$counters"
  return $code
}

command=${1:-}; shift || true
case $command in
  up) parse_options "$@"; up ;;
  down) preflight; down ;;
  run) parse_options "$@"; run ;;
  exec)
    h=${1:?exec needs a host name (see the hostfile)}; shift
    [[ -e /run/netns/$h && -e $STATE/$h.mnt ]] || die "no emulated host '$h' (hosts: $(ip netns list | awk '{print $1}' | grep "^$PREFIX-h" | sort -V | tr '\n' ' '))"
    w=$(wrapper)
    # shellcheck disable=SC2086 # the wrapper is words
    exec ${w//%h/$h} "$@" ;;
  counters) counters ;;
  wrapper) wrapper ;;
  *) die "usage: $0 up|down|run|exec|counters|wrapper [options] (see the top of the script)" ;;
esac
