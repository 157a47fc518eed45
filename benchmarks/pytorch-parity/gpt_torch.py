#!/usr/bin/env python3
"""The GPT sample's model, data shapes and optimizer in plain PyTorch: one process, or DDP over gloo.

The same architecture as samples/Gpt/Model (pre-LayerNorm blocks, fused QKV, explicit causal softmax attention,
erf GELU, untied head, N(0, 0.02) init), AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.01), random
token windows of a synthetic corpus, micro-batch 8 per rank. Each step is timed; the median after the warm-up steps
gives tokens/s = global batch x seq / median step. Prints one line:
    torch: summary {"tokens_per_s": ..., "median_step_ms": ..., "ranks": ..., ...}

    python3 gpt_torch.py [--ranks 2] [--steps 100] [--warmup 10] [--threads 1]
With --ranks N > 1 it starts N copies of itself (RANK, WORLD_SIZE, MASTER_ADDR/PORT) wrapped in DDP over gloo.
"""
import argparse, json, math, os, socket, statistics, subprocess, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x):
        b, t, c = x.shape
        hd = c // self.heads
        q, k, v = self.c_attn(x).split(c, dim=2)
        q = q.view(b, t, self.heads, hd).transpose(1, 2)
        k = k.view(b, t, self.heads, hd).transpose(1, 2)
        v = v.view(b, t, self.heads, hd).transpose(1, 2)
        scores = q.matmul(k.transpose(-2, -1)).mul(1.0 / math.sqrt(hd))
        mask = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
        att = scores.softmax(-1, dtype=torch.float32).to(x.dtype)
        y = att.matmul(v).transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y)


class Block(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d, eps=1e-5)
        self.attn = CausalSelfAttention(d, heads)
        self.ln_2 = nn.LayerNorm(d, eps=1e-5)
        self.c_fc = nn.Linear(d, 4 * d)
        self.c_proj = nn.Linear(4 * d, d)

    def forward(self, x):
        h = x + self.attn(self.ln_1(x))
        return h + self.c_proj(F.gelu(self.c_fc(self.ln_2(h))))


class Gpt(nn.Module):
    def __init__(self, vocab, d, layers, heads, seq):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Embedding(seq, d)
        self.h = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d, eps=1e-5)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, 0.0, 0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, idx):
        pos = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        return self.lm_head(self.ln_f(x))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--vocab", type=int, default=512)
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq", type=int, default=64)
    p.add_argument("--micro-batch", type=int, default=8)
    p.add_argument("--seed", type=int, default=42)
    a = p.parse_args()

    if a.ranks > 1 and "RANK" not in os.environ:
        env = dict(os.environ, WORLD_SIZE=str(a.ranks), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
        procs = [subprocess.Popen([sys.executable] + sys.argv, env=dict(env, RANK=str(r))) for r in range(a.ranks)]
        sys.exit(max(proc.wait() for proc in procs))

    torch.set_num_threads(a.threads)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    torch.manual_seed(a.seed)
    model = Gpt(a.vocab, a.d_model, a.layers, a.heads, a.seq)
    if world > 1:
        import torch.distributed as dist
        dist.init_process_group("gloo", rank=rank, world_size=world)
        model = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01)
    gen = torch.Generator().manual_seed(a.seed)
    corpus = torch.randint(0, a.vocab, (1 << 20,), generator=gen)
    starts = torch.randint(0, corpus.numel() - a.seq - 1, (a.steps, world, a.micro_batch), generator=gen)
    offsets = torch.arange(a.seq + 1)

    times, loss_value = [], float("nan")
    model.train()
    for step in range(a.steps):
        t0 = time.perf_counter()
        window = corpus[starts[step, rank].unsqueeze(1) + offsets]
        x, y = window[:, :-1], window[:, 1:]
        logits = model(x)
        loss = F.cross_entropy(logits.view(-1, a.vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_value = loss.item()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times[a.warmup:])
    tokens_per_step = world * a.micro_batch * a.seq
    if rank == 0:
        print("torch: summary " + json.dumps({"tokens_per_s": tokens_per_step / median, "median_step_ms": median * 1000,
                                              "ranks": world, "threads": a.threads, "final_loss": loss_value,
                                              "torch": torch.__version__}), flush=True)
    if world > 1:
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main()
