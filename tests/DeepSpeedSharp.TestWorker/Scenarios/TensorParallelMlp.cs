using DeepSpeedSharp.Comm;
using DeepSpeedSharp.TensorParallel;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// A two-layer MLP y = W2·gelu(W1·x + b1) + b2 split by hand as Megatron splits it: W1 and b1 by rows across the tensor
/// ranks (column-parallel), W2 by columns (row-parallel, an all-reduce in forward), b2 replicated. Rank t's slices are
/// the slices of the full weights <see cref="FullWeights"/> creates, so tp = 1 and tp = N start from the same model.
/// </summary>
public sealed class TensorParallelMlp : nn.Module<Tensor, Tensor>
{
    /// <summary>Input, hidden and output widths.</summary>
    public const int In = 8, Hidden = 16, Out = 4;

    private readonly Parameter w1, b1, w2, b2;
    private readonly ProcessGroup? tensorGroup;

    /// <summary>The slices of tensor rank <paramref name="tpRank"/> of <paramref name="tpSize"/> (the full model when tpSize is 1).</summary>
    public TensorParallelMlp(int tpRank, int tpSize, ProcessGroup? tensorGroup) : base("tp_mlp")
    {
        this.tensorGroup = tensorGroup;
        var (fw1, fb1, fw2, fb2) = FullWeights();
        long h = Hidden / tpSize, start = tpRank * h;
        w1 = new Parameter(fw1.narrow(0, start, h).contiguous()).MarkTensorModelParallel(partitionDim: 0);
        b1 = new Parameter(fb1.narrow(0, start, h).contiguous()).MarkTensorModelParallel(partitionDim: 0);
        w2 = new Parameter(fw2.narrow(1, start, h).contiguous()).MarkTensorModelParallel(partitionDim: 1);
        b2 = new Parameter(fb2.clone());
        RegisterComponents();
    }

    /// <summary>The full weights, the same on every rank: W1 [Hidden, In], b1 [Hidden], W2 [Out, Hidden], b2 [Out].</summary>
    public static (Tensor W1, Tensor B1, Tensor W2, Tensor B2) FullWeights()
    {
        var g = new Generator(4321);
        return (randn(Hidden, In, generator: g) * 0.3, randn(Hidden, generator: g) * 0.1, randn(Out, Hidden, generator: g) * 0.3, randn(Out, generator: g) * 0.1);
    }

    /// <summary>Micro-batch <paramref name="micro"/> of data-parallel rank <paramref name="dpRank"/> at <paramref name="step"/>:
    /// inputs [mb, In] and targets [mb, Out], a function of (step, global sample index) only.</summary>
    public static (Tensor X, Tensor Y) Batch(long step, int dpRank, int micro, int mb, int gas)
    {
        var g = new Generator((ulong)(100_000 + step * 1_000 + dpRank * gas + micro));
        return (randn(mb, In, generator: g), randn(mb, Out, generator: g));
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor x)
    {
        if (tensorGroup != null) x = TensorParallelRegions.CopyToTensorModelParallelRegion(x, tensorGroup);
        var h = nn.functional.gelu(nn.functional.linear(x, w1, b1));
        var partial = nn.functional.linear(h, w2);
        var y = tensorGroup != null ? TensorParallelRegions.ReduceFromTensorModelParallelRegion(partial, tensorGroup) : partial;
        return y + b2;
    }

    /// <summary>
    /// The independent reference: the full MLP trained by a plain TorchSharp loop (torch.optim.AdamW, backward,
    /// clip_grad_norm_, step; no DeepSpeedSharp) on the global batch of every step (all data-parallel ranks' micro-batches,
    /// each loss divided by their number). Returns per-step (mean loss, gradient norm before clipping).
    /// </summary>
    public static List<(double Loss, double Norm)> PlainReference(int steps, int dp, int gas, int mb, double clip, double lr)
    {
        using var scope = NewDisposeScope();
        var model = new TensorParallelMlp(0, 1, null);
        var parameters = model.parameters().ToList();
        var result = PlainLoop.Train(parameters, (step, d, m) =>
        {
            var (x, y) = Batch(step, d, m, mb, gas);
            return nn.functional.mse_loss(model.call(x), y);
        }, steps, dp, gas, clip, lr);
        return result;
    }
}
