using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>Multi-head causal self-attention: one fused QKV projection, scale 1/sqrt(head_dim), softmax in fp32.</summary>
public sealed class CausalSelfAttention : nn.Module<Tensor, Tensor>
{
    private readonly Linear c_attn;
    private readonly Linear c_proj;
    private readonly Dropout attn_dropout;
    private readonly Dropout resid_dropout;
    private readonly int heads;

    public CausalSelfAttention(GptConfig config) : base(nameof(CausalSelfAttention))
    {
        heads = config.Heads;
        c_attn = nn.Linear(config.DModel, 3 * config.DModel);
        c_proj = nn.Linear(config.DModel, config.DModel);
        attn_dropout = nn.Dropout(config.Dropout);
        resid_dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        long b = x.shape[0], t = x.shape[1], c = x.shape[2], hd = c / heads;
        var qkv = c_attn.call(x).split(c, dim: 2);
        var q = qkv[0].view(b, t, heads, hd).transpose(1, 2);
        var k = qkv[1].view(b, t, heads, hd).transpose(1, 2);
        var v = qkv[2].view(b, t, heads, hd).transpose(1, 2);
        var scores = q.matmul(k.transpose(-2, -1)).mul(1.0 / Math.Sqrt(hd));
        var mask = ones(t, t, dtype: ScalarType.Bool, device: x.device).triu(1);
        scores = scores.masked_fill(mask, double.NegativeInfinity);
        var att = attn_dropout.call(scores.softmax(-1, ScalarType.Float32).to(x.dtype));
        var y = att.matmul(v).transpose(1, 2).contiguous().view(b, t, c);
        return resid_dropout.call(c_proj.call(y)).MoveToOuterDisposeScope();
    }
}
