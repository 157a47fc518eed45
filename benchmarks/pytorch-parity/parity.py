#!/usr/bin/env python3
"""Interleaved speed comparison of the GPT sample against the same model in plain PyTorch (and a plain TorchSharp loop).

Every round runs, one after the other on the same quiet machine, 1 thread per rank:
  ours-1      the GPT sample on one process (samples/Gpt, --deepspeed_config configs/zero0.json)
  torch-1     the same model, data shapes and AdamW in plain PyTorch (gpt_torch.py)
  engine-1    the GPT sample with its default config (TorchSharp's optim.AdamW, as the plain loop)
  plain-1     the same model, batches and optim.AdamW in a plain TorchSharp loop without the engine (PlainTorchSharp/)
  ours-2      the GPT sample on 2 ranks, ZeRO stage 0 (data parallel), through dss launch
  ddp-2       gpt_torch.py on 2 ranks in DistributedDataParallel over gloo
and prints each round's tokens/s and ratios (ours/torch, ours/ddp, engine overhead = plain/engine - 1), then the
median of each ratio over the rounds. The order within a round rotates so no configuration always runs first.

    python3 benchmarks/pytorch-parity/parity.py [--rounds 3] [--steps 100] [--warmup 10] [--isa native|avx2]

Needs PyTorch for /usr/bin/python3 (Debian: apt-get install python3-torch libopenblas0; the script says so when it is
missing) and builds the sample, the plain loop and the dss tool in Release first. --isa avx2 restricts libtorch 2.10
(ours) to AVX2 kernels (ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2), as on a CPU without AVX-512.
"""
import argparse, json, os, statistics, subprocess, sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPT = os.path.join(ROOT, "samples/Gpt/bin/Release/net10.0/Gpt.dll")
PLAIN = os.path.join(ROOT, "benchmarks/pytorch-parity/PlainTorchSharp/bin/Release/net10.0/PlainTorchSharp.dll")
DSS = os.path.join(ROOT, "src/DeepSpeedSharp.Cli/bin/Release/net10.0/dss.dll")
TORCH = os.path.join(ROOT, "benchmarks/pytorch-parity/gpt_torch.py")
ZERO0 = os.path.join(ROOT, "samples/Gpt/configs/zero0.json")
PYTHON = "/usr/bin/python3"


def run(cmd, env, marker):
    out = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(f"parity: {' '.join(cmd)} exited with code {out.returncode}:\n" + "\n".join(out.stdout.splitlines()[-15:]))
    for line in out.stdout.splitlines():
        at = line.find(marker)
        if at >= 0:
            summary = json.loads(line[at + len(marker):])
            if summary.get("rank", 0) == 0:
                return summary
    sys.exit(f"parity: no '{marker}' line from {' '.join(cmd)}")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--isa", choices=["native", "avx2"], default="native")
    p.add_argument("--no-build", action="store_true", help="use the Release builds as they are")
    a = p.parse_args()
    if subprocess.run([PYTHON, "-c", "import torch"], capture_output=True).returncode != 0:
        sys.exit("parity: PyTorch is missing for /usr/bin/python3; install it with: apt-get install -y python3-torch libopenblas0")
    if not a.no_build:
        for project in ["samples/Gpt", "benchmarks/pytorch-parity/PlainTorchSharp", "src/DeepSpeedSharp.Cli"]:
            subprocess.run(["dotnet", "build", project, "-c", "Release", "-v", "q", "-nologo"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)

    one = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env = dict(os.environ, **one)
    ours_env = dict(env, **({"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"} if a.isa == "avx2" else {}))
    steps = ["--steps", str(a.steps)]
    runs = {
        "ours-1": lambda: run(["dotnet", GPT, *steps, "--warmup-steps", str(a.warmup), "--deepspeed_config", ZERO0], ours_env, "gpt: summary "),
        "torch-1": lambda: run([PYTHON, TORCH, *steps, "--warmup", str(a.warmup)], env, "torch: summary "),
        "engine-1": lambda: run(["dotnet", GPT, *steps, "--warmup-steps", str(a.warmup)], ours_env, "gpt: summary "),
        "plain-1": lambda: run(["dotnet", PLAIN, *steps, "--warmup", str(a.warmup)], ours_env, "plain: summary "),
        "ours-2": lambda: run(["dotnet", DSS, "launch", "--num_gpus", "2", GPT, *steps, "--warmup-steps", str(a.warmup),
                               "--deepspeed_config", ZERO0], ours_env, "gpt: summary "),
        "ddp-2": lambda: run([PYTHON, TORCH, "--ranks", "2", *steps, "--warmup", str(a.warmup)], env, "torch: summary "),
    }
    names = list(runs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    isa = "AVX-512" + (" + AVX-512 BF16" if "avx512_bf16" in flags else "") if "avx512f" in flags else "AVX2" if "avx2" in flags else "?"
    print(f"# parity: CPU {cpu} ({isa}), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, ours' kernels: {a.isa}, "
          f"{a.rounds} rounds x {a.steps} steps (median step after {a.warmup}), 1 thread per rank")
    print("| round | " + " | ".join(names) + " | ours-1/torch-1 | ours-2/ddp-2 | engine overhead |")
    print("|---|" + "---|" * (len(names) + 3))
    ratios = {"1p": [], "dp": [], "overhead": []}
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        tps = {n: runs[n]()["tokens_per_s"] for n in order}
        ratios["1p"].append(tps["ours-1"] / tps["torch-1"])
        ratios["dp"].append(tps["ours-2"] / tps["ddp-2"])
        ratios["overhead"].append(tps["plain-1"] / tps["engine-1"] - 1)
        print(f"| {r + 1} | " + " | ".join(f"{tps[n]:,.0f}" for n in names)
              + f" | {ratios['1p'][-1]:.2f} | {ratios['dp'][-1]:.2f} | {100 * ratios['overhead'][-1]:+.1f}% |", flush=True)
    m = {k: statistics.median(v) for k, v in ratios.items()}
    print(f"| median | " + " | ".join("" for _ in names) + f" | {m['1p']:.2f} | {m['dp']:.2f} | {100 * m['overhead']:+.1f}% |")
    print(f"# load at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
