#!/usr/bin/env python3
"""Interleaved speed comparison of the GPT sample against the same model in plain PyTorch (and a plain TorchSharp loop).

Every round runs, one after the other on the same machine, 1 thread per rank:
  ours-1      the GPT sample on one process (samples/Gpt, --deepspeed_config configs/zero0.json)
  torch-1     the same model, data shapes and AdamW in plain PyTorch (gpt_torch.py)
  plain-1     the same model, batches and optim.AdamW in a plain TorchSharp loop (PlainTorchSharp/), alternating step by
              step, in the same process, with the same model trained through the engine (the sample's default config,
              the same optim.AdamW): the engine's own overhead with the machine's drift cancelled, and its losses
  ours-2      the GPT sample on 2 ranks, ZeRO stage 0 (data parallel), through dss launch, with the engine's timers
  overlap-2   the same with overlap_comm (each bucket's all-reduce started during backward)
  indep-2     two single-process runs of the sample at once: 2 ranks' compute without any communication
  ddp-2       gpt_torch.py on 2 ranks in DistributedDataParallel over gloo
and prints each round's tokens/s and ratios (ours/torch, ours/ddp, engine overhead), the data-parallel step taken apart
(ours-2's step against indep-2's, the time rank 0 spends in the gradient all-reduce, with and without overlap_comm, and
the shm all-reduce of the gradient's size alone, from dss bench comm), then the median of each figure over the rounds.
The order within a round rotates so no configuration always runs first.

    python3 benchmarks/pytorch-parity/parity.py [--rounds 3] [--steps 100] [--warmup 10] [--isa native|avx2]

Needs PyTorch for /usr/bin/python3 (Debian: apt-get install python3-torch libopenblas0; the script says so when it is
missing) and builds the sample, the plain loop and the dss tool in Release first. --isa avx2 restricts libtorch 2.10
(ours) to AVX2 kernels (ATEN_CPU_CAPABILITY=avx2, MKL_ENABLE_INSTRUCTIONS=AVX2), as on a CPU without AVX-512.
"""
import argparse, csv, json, os, statistics, subprocess, sys, tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
GPT = os.path.join(ROOT, "samples/Gpt/bin/Release/net10.0/Gpt.dll")
PLAIN = os.path.join(ROOT, "benchmarks/pytorch-parity/PlainTorchSharp/bin/Release/net10.0/PlainTorchSharp.dll")
DSS = os.path.join(ROOT, "src/DeepSpeedSharp.Cli/bin/Release/net10.0/dss.dll")
TORCH = os.path.join(ROOT, "benchmarks/pytorch-parity/gpt_torch.py")
ZERO0 = os.path.join(ROOT, "samples/Gpt/configs/zero0.json")
PYTHON = "/usr/bin/python3"


def summaries(text, marker):
    """Every summary line's JSON (the text after marker) in a run's output."""
    return [json.loads(line[line.index(marker) + len(marker):]) for line in text.splitlines() if marker in line]


def run(cmd, env, marker):
    """Runs a command to its end; returns rank 0's summary line (the JSON after marker)."""
    out = subprocess.run(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(f"parity: {' '.join(cmd)} exited with code {out.returncode}:\n" + "\n".join(out.stdout.splitlines()[-15:]))
    rank0 = [s for s in summaries(out.stdout, marker) if s.get("rank", 0) == 0]
    if not rank0:
        sys.exit(f"parity: no '{marker}' line from {' '.join(cmd)}")
    return rank0[0]


def timed_config(base, work, name, **zero):
    """base plus the engine's per-step timers written by csv_monitor into work/name (and zero_optimization keys)."""
    config = json.load(open(base))
    config.update({"wall_clock_breakdown": True, "csv_monitor": {"enabled": True, "output_path": work, "job_name": name}})
    config["zero_optimization"].update(zero)
    path = os.path.join(work, name + ".json")
    json.dump(config, open(path, "w"))
    return path


def timer_median(work, name, timer, warmup, per_print=10):
    """Rank 0's median of one engine timer (ms per optimizer step) after the warm-up steps. The monitor writes the time
    summed over each steps_per_print steps (10 in configs/zero0.json), so each row is divided by that."""
    rows = list(csv.reader(open(os.path.join(work, name, f"Train_Samples_elapsed_time_ms_{timer}.csv"))))[1 + -(-warmup // per_print):]
    return statistics.median(float(r[1]) / per_print for r in rows)


def independent_pair(cmd, env):
    """Two copies of a single-process run at once; the mean of their median step times (ms)."""
    procs = [subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outs = [p.communicate()[0] for p in procs]
    ms = [s["median_step_ms"] for o in outs for s in summaries(o, "gpt: summary ")]
    if len(ms) != 2:
        sys.exit("parity: the independent pair did not both finish:\n" + "\n".join(outs[0].splitlines()[-10:]))
    return statistics.mean(ms)


def shm_allreduce_ms(env, nbytes):
    """The shm all-reduce of nbytes on 2 ranks alone (dss bench comm), in ms."""
    out = subprocess.run(["dotnet", DSS, "launch", "--num_gpus", "2", DSS, "bench", "comm", "--backend", "shm", "--op", "all_reduce",
                          "--sizes", str(nbytes), "--iters", "20"], env=env, cwd=ROOT, capture_output=True, text=True).stdout
    rows = [l.split() for l in out.splitlines() if l.startswith("[rank 0]") and l.split()[-1].replace(".", "").isdigit()]
    return float(rows[-1][-3]) / 1000 if rows else float("nan")


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
    work = tempfile.mkdtemp(prefix="parity-")
    steps = ["--steps", str(a.steps)]
    gpt = ["dotnet", GPT, *steps, "--warmup-steps", str(a.warmup)]
    launch2 = ["dotnet", DSS, "launch", "--num_gpus", "2", GPT, *steps, "--warmup-steps", str(a.warmup), "--deepspeed_config"]
    runs = {
        "ours-1": lambda r: run([*gpt, "--deepspeed_config", ZERO0], ours_env, "gpt: summary "),
        "torch-1": lambda r: run([PYTHON, TORCH, *steps, "--warmup", str(a.warmup)], env, "torch: summary "),
        "plain-1": lambda r: run(["dotnet", PLAIN, *steps, "--warmup", str(a.warmup), "--alternate-engine"], ours_env, "plain: summary "),
        "ours-2": lambda r: run([*launch2, timed_config(ZERO0, work, f"dp{r}")], ours_env, "gpt: summary "),
        "overlap-2": lambda r: run([*launch2, timed_config(ZERO0, work, f"ov{r}", overlap_comm=True)], ours_env, "gpt: summary "),
        "indep-2": lambda r: {"median_step_ms": independent_pair([*gpt, "--deepspeed_config", ZERO0], ours_env)},
        "ddp-2": lambda r: run([PYTHON, TORCH, "--ranks", "2", *steps, "--warmup", str(a.warmup)], env, "torch: summary "),
    }
    names = list(runs)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "")
    isa = "AVX-512" + (" + AVX-512 BF16" if "avx512_bf16" in flags else "") if "avx512f" in flags else "AVX2" if "avx2" in flags else "?"
    print(f"# parity: CPU {cpu} ({isa}), {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}, ours' kernels: {a.isa}, "
          f"{a.rounds} rounds x {a.steps} steps (median step after {a.warmup}), 1 thread per rank")
    shown = ["ours-1", "torch-1", "plain-1", "ours-2", "overlap-2", "ddp-2"]
    figures = ["ours-1/torch-1", "ours-2/ddp-2", "engine overhead", "loss diff", "ours-2 step", "indep-2 step",
               "all-reduce wait", "with overlap", "overlap-2 step"]
    print("| round | " + " | ".join(f"{n} tokens/s" for n in shown) + " | " + " | ".join(figures) + " |")
    print("|---|" + "---|" * (len(shown) + len(figures)))
    got = {f: [] for f in figures}
    for r in range(a.rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        res = {n: runs[n](r) for n in order}
        tps = {n: res[n].get("tokens_per_s", 0) for n in names}
        row = {
            "ours-1/torch-1": tps["ours-1"] / tps["torch-1"], "ours-2/ddp-2": tps["ours-2"] / tps["ddp-2"],
            "engine overhead": res["plain-1"]["engine_overhead"], "loss diff": res["plain-1"]["max_loss_difference"],
            "ours-2 step": res["ours-2"]["median_step_ms"], "indep-2 step": res["indep-2"]["median_step_ms"],
            "all-reduce wait": timer_median(work, f"dp{r}", "backward_allreduce", a.warmup),
            "with overlap": timer_median(work, f"ov{r}", "backward_allreduce", a.warmup),
            "overlap-2 step": res["overlap-2"]["median_step_ms"],
        }
        for f in figures:
            got[f].append(row[f])
        print(f"| {r + 1} | " + " | ".join(f"{tps[n]:,.0f}" for n in shown) + " | " + " | ".join(fmt(f, row[f]) for f in figures) + " |", flush=True)
    print("| median | " + " | ".join("" for _ in shown) + " | " + " | ".join(fmt(f, statistics.median(got[f])) for f in figures) + " |")
    grad_bytes = 4 * 932608
    print(f"# the shm all-reduce of the gradient alone ({grad_bytes / 2**20:.2f} MiB, 2 ranks, dss bench comm): {shm_allreduce_ms(ours_env, grad_bytes):.2f} ms")
    print(f"# load at the end {os.getloadavg()[0]:.2f}; ratios are per round, then the median; times in ms per optimizer step on rank 0")


def fmt(figure, value):
    if figure in ("ours-1/torch-1", "ours-2/ddp-2"):
        return f"{value:.2f}"
    if figure == "engine overhead":
        return f"{100 * value:+.1f}%"
    if figure == "loss diff":
        return f"{value:g}"
    return f"{value:.1f}"


if __name__ == "__main__":
    main()
