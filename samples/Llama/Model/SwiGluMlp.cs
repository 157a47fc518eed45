using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// LLaMA's feed-forward network: down(silu(gate(x)) · up(x)), with gate and up column-parallel d → f and down
/// row-parallel f → d (so under tensor parallelism each rank computes the product on its slice of f).
/// </summary>
public sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    private readonly nn.Module<Tensor, Tensor> gate_proj;
    private readonly nn.Module<Tensor, Tensor> up_proj;
    private readonly nn.Module<Tensor, Tensor> down_proj;
    private readonly Dropout dropout;
    private readonly LlamaLayers layers;

    /// <param name="config">The model's shape (d, f, dropout).</param>
    /// <param name="layers">Where the projections come from.</param>
    public SwiGluMlp(LlamaConfig config, LlamaLayers layers) : base(nameof(SwiGluMlp))
    {
        int d = config.DModel, f = config.FfnHiddenSize;
        Hidden = f;
        gate_proj = layers.ColumnLinear(d, f, gatherOutput: false);
        up_proj = layers.ColumnLinear(d, f, gatherOutput: false);
        down_proj = layers.RowLinear(f, d);
        dropout = nn.Dropout(config.Dropout);
        this.layers = layers;
        RegisterComponents();
    }

    /// <summary>The hidden size f of the whole layer.</summary>
    public int Hidden { get; }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        var hidden = nn.functional.silu(gate_proj.call(x)) * up_proj.call(x);
        var y = down_proj.call(hidden);
        // On a sequence slice (sequence parallelism) each tensor rank drops different tokens: the model-parallel stream.
        using (layers.SequenceParallel ? layers.ParallelRegionRng() : null) y = dropout.call(y);
        return y.MoveToOuterDisposeScope();
    }
}
