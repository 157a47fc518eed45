#!/usr/bin/env python3
"""Training across emulated hosts: the GPT sample on 2 hosts x 2 ranks (benchmarks/cluster/cluster.sh) at each link
rate, for ZeRO-1, ZeRO-3, ZeRO-3 + hpZ, ZeRO-3 + hpZ + qwZ + qgZ (ZeRO++) and a 2-stage pipeline with one stage per host,
against the same 4 ranks on one host (shared memory: the step without links).

Per run it prints tokens/s, the median step, the bytes the busiest host's link carries per step (the engine's count of
its ranks' bytes to other hosts in the last step, which the kernel's link counters confirm within 5%: see
tests/.../EmulatedClusterTests), the time those bytes need at the link's rate, and how much of that time the step hides:
    exposed = step on the cluster - step on one host,   hidden = 1 - exposed / link time   (0 when nothing is hidden).

Usage: benchmarks/cluster/training.py [--rates 1gbit,10gbit] [--configs zero1,zero3,hpz,zeropp,pp2] [--precision bf16|fp32]
         [--model "--vocab 8192 ..."] [--steps 4] [--warmup 1] [--no-build]
"""
import argparse, json, os, re, resource, socket, subprocess, sys, tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DSS = os.path.join(REPO, "src/DeepSpeedSharp.Cli/bin/Release/net10.0/dss.dll")
GPT = os.path.join(REPO, "samples/Gpt/bin/Release/net10.0/Gpt.dll")
MODEL = "--vocab 8192 --d-model 512 --layers 16 --heads 8 --seq 64"  # 58.9 M parameters

# ZeRO-3 with DeepSpeed's defaults, except that each parameter is released after use and gathered again in backward
# (stage3_max_reuse_distance 0), as in a model whose layers lie further apart than the reuse distance: the regime hpZ
# is for. Prefetch: DeepSpeed's 5e7 elements.
STAGE3 = {"stage": 3, "stage3_param_persistence_threshold": 0, "stage3_max_reuse_distance": 0,
          "stage3_prefetch_bucket_size": 5e7, "reduce_bucket_size": 5e7}
CONFIGS = {
    "zero1": ({"stage": 1, "reduce_bucket_size": 5e7}, 1),
    "zero3": (STAGE3, 1),
    "hpz": (dict(STAGE3, zero_hpz_partition_size=2), 1),
    "zeropp": (dict(STAGE3, zero_hpz_partition_size=2, zero_quantized_weights=True, zero_quantized_gradients=True), 1),
    "hpz+qwz": (dict(STAGE3, zero_hpz_partition_size=2, zero_quantized_weights=True), 1),
    "hpz+qgz": (dict(STAGE3, zero_hpz_partition_size=2, zero_quantized_gradients=True), 1),
    "pp2": ({"stage": 1, "reduce_bucket_size": 5e7}, 2),
}


def config(name, precision):
    zero, stages = CONFIGS[name]
    dp = 4 // stages
    c = {"train_batch_size": 8, "train_micro_batch_size_per_gpu": 1, "steps_per_print": 1000,
         "gradient_accumulation_steps": 8 // dp, "optimizer": {"type": "AdamW", "params": {"lr": 1e-4}},
         "zero_optimization": zero, "bf16": {"enabled": precision == "bf16"}}
    return c, stages


def summaries(output):
    """Each rank's machine summary, keyed by host: {host: [summary, ...]} (pdsh prefixes lines with the host)."""
    out = {}
    for m in re.finditer(r"^(?:(\S+): )?\[rank \d+\] gpt: summary (\{.*\})\s*$", output, re.M):
        out.setdefault(m.group(1) or "local", []).append(json.loads(m.group(2)))
    return out


def run(name, precision, args, work, rate=None):
    cfg, stages = config(name, precision)
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    with socket.socket() as probe:  # a free port (inside the emulated hosts every port is free)
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    program = [GPT, *args.model.split(), "--steps", str(args.steps), "--warmup-steps", str(args.warmup),
               "--deepspeed_config", path, "--pipeline-model-parallel-size", str(stages)]
    if cfg["zero_optimization"]["stage"] == 3:
        program.append("--zero-init")  # built partitioned, as a model too large for one rank would be
    if rate is None:
        cmd = ["dotnet", DSS, "launch", "--num_gpus", "4", "--master_port", port, *program]
    else:
        cmd = [os.path.join(HERE, "cluster.sh"), "run", "--hosts", "2", "--slots", "2", "--rate", rate,
               "--dss", f"dotnet {DSS}", "--", "--master_port", port, *program]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=work)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # CPU seconds of every process of the run (ranks, launchers; they are all waited for), per training step.
    cpu = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / args.steps
    output = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit(f"training.py: {name} {rate or 'one host'} failed ({p.returncode}):\n{output[-3000:]}")
    s = summaries(output)
    ranks = [r for rs in s.values() for r in rs]
    step_ms = max(r["median_step_ms"] for r in ranks)
    tokens = sum(r["tokens_per_s"] for r in ranks if r["rank"] == 0)
    link = max(sum(r["bytes_sent_cross_host_last_step"] for r in rs) for rs in s.values()) if rate else 0
    return step_ms, tokens, link, cpu


def rate_bits(rate):
    m = re.fullmatch(r"([0-9.]+)([kmg]?)bit", rate)
    return float(m.group(1)) * {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}[m.group(2)]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rates", default="1gbit,10gbit", help="link rates, comma-separated; 'none' alone runs only on one host")
    ap.add_argument("--configs", default="zero1,zero3,hpz,zeropp,pp2")
    ap.add_argument("--precision", default="bf16", choices=["bf16", "fp32"])
    ap.add_argument("--model", default=MODEL)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for name in args.configs.split(","):
        if name not in CONFIGS:
            sys.exit(f"training.py: --configs: unknown '{name}'; known: {', '.join(CONFIGS)}")
    if not args.no_build:
        for proj in ["src/DeepSpeedSharp.Cli", "samples/Gpt"]:
            subprocess.run(["dotnet", "build", "-c", "Release", "-v", "q", "-nologo", os.path.join(REPO, proj)], check=True,
                           stdout=subprocess.DEVNULL)
    cpu = next((l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                if l.startswith("Model name")), "?")
    print(f"# {cpu}, {os.cpu_count()} cores; {args.precision}; GPT {args.model}; 8 sequences per step; "
          f"{args.steps} steps, median after {args.warmup}", flush=True)
    print(f"{'config':8} {'link':7} {'step_ms':>9} {'tokens/s':>9} {'link_MB/step':>13} {'link_ms':>9} {'exposed_ms':>11} {'hidden':>7} {'cpu_s/step':>11}", flush=True)
    with tempfile.TemporaryDirectory() as work:
        for name in args.configs.split(","):
            base_ms, base_tokens, _, base_cpu = run(name, args.precision, args, work)
            print(f"{name:8} {'none':7} {base_ms:9.0f} {base_tokens:9.1f} {'':>13} {'':>9} {'':>11} {'':>7} {base_cpu:11.1f}", flush=True)
            for rate in [r for r in args.rates.split(",") if r != "none"]:
                ms, tokens, link, cpu = run(name, args.precision, args, work, rate)
                link_ms = link * 8 / rate_bits(rate) * 1000
                exposed = ms - base_ms
                # Only meaningful when the links take a visible share of the step.
                hidden = f"{min(1.0, max(0.0, 1 - exposed / link_ms)):7.0%}" if link_ms >= 0.02 * ms else f"{'-':>7}"
                print(f"{name:8} {rate:7} {ms:9.0f} {tokens:9.1f} {link / 1e6:13.1f} {link_ms:9.0f} {exposed:11.0f} {hidden} {cpu:11.1f}", flush=True)


if __name__ == "__main__":
    main()
