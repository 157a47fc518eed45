using DeepSpeedSharp.Samples.Shared;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Bert.Model;

/// <summary>
/// The stack of <see cref="BertLayer"/>s. With <see cref="CheckpointInterval"/> k ≥ 1 (and in training) it is the
/// Gaudi guide's <c>checkpointed_forward</c>: the layers run in consecutive chunks of k, each chunk one
/// <c>DeepSpeed.Checkpointing.Checkpoint</c> segment (only the chunk's input is kept; its activations are recomputed in
/// backward).
/// </summary>
public sealed class BertEncoder : nn.Module<Tensor, Tensor>
{
    private readonly ModuleList<BertLayer> layer;
    private int checkpointInterval;

    /// <param name="config">The model's shape.</param>
    public BertEncoder(BertConfig config) : base(nameof(BertEncoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, config.Layers).Select(_ => new BertLayer(config)).ToArray());
        RegisterComponents();
    }

    /// <summary>The layers, in order.</summary>
    public IReadOnlyList<BertLayer> Layers => layer.ToList();

    /// <summary>0 = no checkpointing; k ≥ 1 = checkpoint the layers in chunks of k.</summary>
    public int CheckpointInterval
    {
        get => checkpointInterval;
        set => checkpointInterval = value >= 0 ? value
            : throw new ArgumentOutOfRangeException(nameof(value), $"--checkpoint-activations-interval must be a positive number of layers, got {value}");
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        return CheckpointedLayers.Forward(layer, checkpointInterval, training, x).MoveToOuterDisposeScope();
    }
}
