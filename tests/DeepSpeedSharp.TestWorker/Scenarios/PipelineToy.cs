using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.TensorParallel;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// A tiny language model written as pipeline layers: an embedding (optionally tied to the output head, as GPT ties wte and
/// lm_head), residual blocks whose MLP is tensor-parallel (column then row) when the grid has tensor ranks, a parameterless
/// function layer, and the head. Every layer is built under its own seed (base seed + layer index), so any split builds
/// the same weights; <see cref="PlainReference"/> trains the unsplit model with a plain TorchSharp loop.
/// </summary>
public static class PipelineToy
{
    public const int Vocab = 16, D = 8, Hidden = 16, Seq = 4, BaseSeed = 1234;

    /// <summary>The layers: embedding, <paramref name="blocks"/> blocks, a function layer, the head.</summary>
    public static List<LayerSpec> Layers(int blocks, bool tied, IModelParallelUnit? mpu)
    {
        var layers = new List<LayerSpec>();
        Func<nn.Module<Tensor, Tensor>> embedding = () => new ToyEmbedding();
        layers.Add(tied ? new TiedLayerSpec("embed", embedding, nameof(ToyEmbedding)) : new LayerSpec(embedding, nameof(ToyEmbedding)));
        for (int i = 0; i < blocks; i++) layers.Add(LayerSpec.Of(() => new ToyBlock(mpu)));
        layers.Add(LayerSpec.Function("HalfScale", x => x * 0.5));
        layers.Add(tied
            ? new TiedLayerSpec("embed", embedding, nameof(ToyEmbedding), forwardFn: (m, x) => matmul(x, ((ToyEmbedding)m).Weight.t()))
            : new LayerSpec(() => new ToyHead(), nameof(ToyHead)));
        return layers;
    }

    /// <summary>Cross-entropy of logits [B, T, V] against token labels [B, T], in fp32.</summary>
    public static Tensor Loss(Tensor logits, Tensor labels) =>
        nn.functional.cross_entropy(logits.to(ScalarType.Float32).reshape(-1, Vocab), labels.reshape(-1));

    /// <summary>Micro-batch <paramref name="micro"/> of data-parallel rank <paramref name="dpRank"/> at <paramref name="step"/>: tokens and labels [mb, Seq].</summary>
    public static (Tensor X, Tensor Y) Batch(long step, int dpRank, int micro, int mb, int gas)
    {
        var g = new Generator((ulong)(200_000 + step * 1_000 + dpRank * gas + micro));
        var x = randint(0, Vocab, [mb, Seq], dtype: ScalarType.Int64, generator: g);
        return (x, (x * 3 + 1).remainder(Vocab)); // a learnable mapping, so the loss falls
    }

    /// <summary>The micro-batches of one step of a data-parallel rank, as TrainBatch reads them.</summary>
    public static IEnumerator<(Tensor Inputs, Tensor Labels)> StepData(long step, int dpRank, int mb, int gas)
    {
        for (int m = 0; m < gas; m++) yield return Batch(step, dpRank, m, mb, gas);
    }

    /// <summary>
    /// The unsplit model trained by a plain TorchSharp loop (AdamW, backward, clip_grad_norm_, step) on the global batch
    /// of every step; then the mean loss of step <paramref name="steps"/>'s batch in evaluation. Returns per-step (loss, norm) and the evaluation loss.
    /// </summary>
    public static (List<(double Loss, double Norm)> Steps, double EvalLoss) PlainReference(int blocks, bool tied, int steps, int dp, int gas, int mb, double clip, double lr)
    {
        using var scope = NewDisposeScope();
        var specs = Layers(blocks, tied, mpu: null);
        var shared = new Dictionary<string, nn.Module<Tensor, Tensor>>();
        var forwards = new List<Func<Tensor, Tensor>>();
        var modules = new List<nn.Module>();
        for (int i = 0; i < specs.Count; i++)
        {
            manual_seed(BaseSeed + i);
            if (specs[i] is TiedLayerSpec t)
            {
                if (!shared.TryGetValue(t.Key, out var m)) { shared[t.Key] = m = t.Build(); modules.Add(m); }
                var fn = t.ForwardFn;
                forwards.Add(fn == null ? x => m.call(x) : x => fn(m, x));
            }
            else
            {
                var m = specs[i].Build();
                modules.Add(m);
                forwards.Add(x => m.call(x));
            }
        }
        var parameters = modules.SelectMany(m => m.parameters()).ToList();
        Tensor Run(Tensor x) => forwards.Aggregate(x, (h, f) => f(h));
        var result = PlainLoop.Train(parameters, (step, d, m) =>
        {
            var (x, y) = Batch(step, d, m, mb, gas);
            return Loss(Run(x), y);
        }, steps, dp, gas, clip, lr);
        double evalSum = 0;
        using (no_grad())
            for (int d = 0; d < dp; d++)
                for (int m = 0; m < gas; m++)
                {
                    using var inner = NewDisposeScope();
                    var (x, y) = Batch(steps, d, m, mb, gas);
                    evalSum += Loss(Run(x), y).item<float>();
                }
        return (result, evalSum / (dp * gas));
    }
}

/// <summary>Token embedding [B, T] → [B, T, D].</summary>
public sealed class ToyEmbedding : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public ToyEmbedding() : base(nameof(ToyEmbedding))
    {
        weight = new Parameter(randn(PipelineToy.Vocab, PipelineToy.D) * 0.5);
        RegisterComponents();
    }

    /// <summary>The embedding matrix [V, D] (the tied head computes x · Wᵀ with it); the tie's attribute is "weight".</summary>
    public Parameter Weight => weight;

    public override Tensor forward(Tensor x) => weight.index_select(0, x.reshape(-1)).reshape(x.shape[0], x.shape[1], PipelineToy.D);
}

/// <summary>x + Row(gelu(Col(LN(x)))): a residual MLP, tensor-parallel over the mpu's tensor ranks.</summary>
public sealed class ToyBlock : nn.Module<Tensor, Tensor>
{
    private readonly LayerNorm ln;
    private readonly ColumnParallelLinear up;
    private readonly RowParallelLinear down;

    public ToyBlock(IModelParallelUnit? mpu) : base(nameof(ToyBlock))
    {
        ln = nn.LayerNorm(PipelineToy.D);
        up = new ColumnParallelLinear(PipelineToy.D, PipelineToy.Hidden, mpu, gatherOutput: false);
        down = new RowParallelLinear(PipelineToy.Hidden, PipelineToy.D, mpu, inputIsParallel: true);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x + down.call(nn.functional.gelu(up.call(ln.call(x))));
}

/// <summary>An untied output head [B, T, D] → [B, T, V].</summary>
public sealed class ToyHead : nn.Module<Tensor, Tensor>
{
    private readonly Linear head;

    public ToyHead() : base(nameof(ToyHead))
    {
        head = nn.Linear(PipelineToy.D, PipelineToy.Vocab, hasBias: false);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => head.call(x);
}
