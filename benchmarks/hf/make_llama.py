#!/usr/bin/env python3
"""Writes a Hugging Face LlamaForCausalLM directory with generated bf16 weights, sharded like save_pretrained does.

Used by the peak-RSS benchmark of loading a model under ZeRO-3 + Zero.Init (docs/benchmarks.md, issue 32). No numpy or
torch needed: each weight is random bf16 of magnitude 2^-7..2^-5 with a random sign; RMSNorm weights are exactly 1.0.

    python3 benchmarks/hf/make_llama.py OUT_DIR [--d-model 1024] [--layers 20] [--heads 16] [--kv-heads 16]
        [--ffn-hidden 2816] [--vocab 32000] [--shards 4] [--seq 128]
"""
import argparse
import json
import math
import os
import struct

# bf16 high byte: sign bit from the random byte, exponent 0x78/0x79 (2^-7..2^-5); low byte: random exponent LSB + mantissa.
HIGH = bytes((0x3C | (b & 0x80)) for b in range(256))


def weight_bytes(n):
    out = bytearray(2 * n)
    out[0::2] = os.urandom(n)
    out[1::2] = os.urandom(n).translate(HIGH)
    return bytes(out)


def ones_bytes(n):
    return b"\x80\x3f" * n  # bf16 1.0 = 0x3F80, little-endian


def tensors(a):
    d, kv, f, v = a.d_model, a.kv_heads * (a.d_model // a.heads), a.ffn_hidden, a.vocab
    yield "model.embed_tokens.weight", [v, d], False
    for i in range(a.layers):
        p = f"model.layers.{i}."
        yield p + "input_layernorm.weight", [d], True
        yield p + "self_attn.q_proj.weight", [d, d], False
        yield p + "self_attn.k_proj.weight", [kv, d], False
        yield p + "self_attn.v_proj.weight", [kv, d], False
        yield p + "self_attn.o_proj.weight", [d, d], False
        yield p + "post_attention_layernorm.weight", [d], True
        yield p + "mlp.gate_proj.weight", [f, d], False
        yield p + "mlp.up_proj.weight", [f, d], False
        yield p + "mlp.down_proj.weight", [d, f], False
    yield "model.norm.weight", [d], True
    yield "lm_head.weight", [v, d], False


def write_shard(path, items):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape, _ in items:
        size = 2 * math.prod(shape)
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, shape, ones in items:
            n = math.prod(shape)
            f.write(ones_bytes(n) if ones else weight_bytes(n))
    return offset


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--d-model", type=int, default=1024)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--heads", type=int, default=16)
    p.add_argument("--kv-heads", type=int, default=16)
    p.add_argument("--ffn-hidden", type=int, default=2816)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--shards", type=int, default=4)
    p.add_argument("--seq", type=int, default=128)
    a = p.parse_args()
    os.makedirs(a.out, exist_ok=True)
    items = list(tensors(a))
    sizes = [2 * math.prod(s) for _, s, _ in items]
    total, target = sum(sizes), sum(sizes) / a.shards
    groups, current, acc = [], [], 0
    for item, size in zip(items, sizes):
        if current and acc + size > target * 1.0001 and len(groups) < a.shards - 1:
            groups.append(current)
            current, acc = [], 0
        current.append(item)
        acc += size
    groups.append(current)
    weight_map = {}
    for k, group in enumerate(groups):
        name = f"model-{k + 1:05d}-of-{len(groups):05d}.safetensors"
        write_shard(os.path.join(a.out, name), group)
        weight_map.update({t[0]: name for t in group})
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": a.d_model,
        "intermediate_size": a.ffn_hidden, "num_attention_heads": a.heads, "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads, "vocab_size": a.vocab, "max_position_embeddings": a.seq,
        "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "hidden_act": "silu", "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
    }
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    params = total // 2
    print(f"wrote {a.out}: {params:,} parameters in {len(groups)} shards ({total:,} bytes, bf16); "
          f"largest tensor {max(sizes) // 2:,} elements")


if __name__ == "__main__":
    main()
