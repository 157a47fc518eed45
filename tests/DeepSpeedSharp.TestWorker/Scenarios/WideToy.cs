using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.TensorParallel;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// A language model big enough for the gradient norm to be hard: 2.1M parameters (sixteen 128 → 512 → 128 residual MLP
/// blocks), so that under ZeRO-1/2 on two ranks one partition holds over a million elements and a single fp32
/// reduction over it misses the norm torch's <c>clip_grad_norm_</c> takes by ~5e-5 relative. No tensor exceeds 65,536
/// elements: torch's own fp32 norm of one tensor drifts from the exact value as it grows (~1e-6 relative at 262,144
/// elements), and comparisons here are about how the engine combines norms, not about torch's kernel. Written as pipeline layers — a
/// vocab-parallel embedding, tensor-parallel blocks (LayerNorm replicated, marked sequence-parallel with sequence
/// parallelism), a column-parallel head — each built under its own seed (base seed + layer index), so every split
/// (pipeline stages, tensor ranks, sequence parallelism) starts from the same weights as the unsplit model.
/// </summary>
public static class WideToy
{
    public const int Vocab = 64, D = 128, Hidden = 512, Blocks = 16, Seq = 8, BaseSeed = 4242;

    /// <summary>The layers: embedding, <see cref="Blocks"/> blocks, head.</summary>
    public static List<LayerSpec> Layers(IModelParallelUnit? mpu, bool sequenceParallel)
    {
        var layers = new List<LayerSpec>
        {
            new(() => new VocabParallelEmbedding(Vocab, D, mpu, sequenceParallel, init: t => nn.init.normal_(t, 0, 0.5)), nameof(VocabParallelEmbedding)),
        };
        for (int i = 0; i < Blocks; i++) layers.Add(LayerSpec.Of(() => new WideBlock(mpu, sequenceParallel)));
        layers.Add(new LayerSpec(() => new ColumnParallelLinear(D, Vocab, mpu, hasBias: false, gatherOutput: !sequenceParallel, sequenceParallel: sequenceParallel),
            "Head"));
        return layers;
    }

    /// <summary>
    /// The loss of the head's logits: cross-entropy over the whole vocabulary, or — with sequence parallelism, where the
    /// head keeps its vocabulary slice — Megatron's vocab-parallel cross-entropy over the tensor group.
    /// </summary>
    public static Func<Tensor, Tensor, Tensor> Loss(IModelParallelUnit? mpu, bool sequenceParallel)
    {
        var tp = TensorParallelContext.From(mpu);
        if (!sequenceParallel || tp.Group == null)
            return (logits, labels) => nn.functional.cross_entropy(logits.reshape(-1, Vocab), labels.reshape(-1));
        long vocabStart = tp.Rank * (Vocab / tp.Size);
        ProcessGroup group = tp.Group;
        return (logits, labels) => TensorParallelRegions.VocabParallelCrossEntropy(logits, labels, group, vocabStart).mean();
    }

    /// <summary>Micro-batch <paramref name="micro"/> of data-parallel rank <paramref name="dpRank"/> at <paramref name="step"/>: tokens and labels [mb, Seq].</summary>
    public static (Tensor X, Tensor Y) Batch(long step, int dpRank, int micro, int mb, int gas)
    {
        var g = new Generator((ulong)(300_000 + step * 1_000 + dpRank * gas + micro));
        var x = randint(0, Vocab, [mb, Seq], dtype: ScalarType.Int64, generator: g);
        var noise = randint(0, 4, [mb, Seq], dtype: ScalarType.Int64, generator: g);
        return (x, (x * 5 + 3 + noise).remainder(Vocab)); // learnable, with noise so the gradient never vanishes
    }

    /// <summary>The micro-batches of one step of a data-parallel rank, as TrainBatch reads them.</summary>
    public static IEnumerator<(Tensor Inputs, Tensor Labels)> StepData(long step, int dpRank, int mb, int gas)
    {
        for (int m = 0; m < gas; m++) yield return Batch(step, dpRank, m, mb, gas);
    }

    /// <summary>The whole-model file's name of a parameter of <see cref="WideToyModel"/> (<c>layers.3.up.weight</c>) or of a
    /// pipeline stage of the same layers (<c>3.up.weight</c>): <c>layers.3.up.weight</c> either way.</summary>
    public static string FileName(string name) => name.StartsWith("layers.", StringComparison.Ordinal) ? name : "layers." + name;

    /// <summary>The layers as one module, each built under base seed + its index, as <see cref="PipelineModule"/> builds them with seedLayers.</summary>
    public static WideToyModel Model(IModelParallelUnit? mpu, bool sequenceParallel) => new(Layers(mpu, sequenceParallel));

    /// <summary>
    /// The unsplit model trained by a plain TorchSharp loop (AdamW, backward, clip_grad_norm_, step; no DeepSpeedSharp
    /// engine) on the global batch of every step. Returns per-step (mean loss, clip_grad_norm_'s norm, the fp64 norm).
    /// </summary>
    /// <param name="initWeights">A whole-model file to start from (read with <see cref="DeepSpeedSharp.IO.ModuleWeights"/>), or null for the seeds.</param>
    public static List<(double Loss, double Norm, double Exact)> PlainReference(int steps, int dp, int gas, int mb, double clip, double lr, string? initWeights = null)
    {
        using var scope = NewDisposeScope();
        using var model = Model(null, false);
        if (initWeights != null) DeepSpeedSharp.IO.ModuleWeights.Load(model, initWeights);
        var loss = Loss(null, false);
        var exact = new List<double>();
        var trained = PlainLoop.Train(model.parameters().ToList(), (step, d, m) =>
        {
            var (x, y) = Batch(step, d, m, mb, gas);
            return loss(model.call(x), y);
        }, steps, dp, gas, clip, lr, exact);
        return trained.Zip(exact, (s, e) => (s.Loss, s.Norm, e)).ToList();
    }
}

/// <summary><see cref="WideToy"/>'s layers applied in order, for engines without a pipeline.</summary>
public sealed class WideToyModel : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<nn.Module<Tensor, Tensor>> layers = new();

    public WideToyModel(IReadOnlyList<LayerSpec> specs) : base(nameof(WideToyModel))
    {
        for (int i = 0; i < specs.Count; i++)
        {
            manual_seed(WideToy.BaseSeed + i);
            layers.Add(specs[i].Build());
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        foreach (var layer in layers) x = layer.call(x);
        return x;
    }
}

/// <summary>x + Row(gelu(Col(LN(x)))), tensor-parallel over the mpu's tensor ranks; with sequence parallelism x is
/// split along the sequence and the LayerNorm's parameters are marked sequence-parallel (as Megatron marks them).</summary>
public sealed class WideBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm ln;
    private readonly ColumnParallelLinear up;
    private readonly RowParallelLinear down;

    public WideBlock(IModelParallelUnit? mpu, bool sequenceParallel) : base(nameof(WideBlock))
    {
        ln = nn.LayerNorm(WideToy.D);
        up = new ColumnParallelLinear(WideToy.D, WideToy.Hidden, mpu, gatherOutput: false, sequenceParallel: sequenceParallel);
        down = new RowParallelLinear(WideToy.Hidden, WideToy.D, mpu, inputIsParallel: true, sequenceParallel: sequenceParallel);
        if (sequenceParallel)
        {
            ln.weight!.MarkSequenceParallel();
            ln.bias!.MarkSequenceParallel();
        }
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x + down.call(nn.functional.gelu(up.call(ln.call(x))));
}
