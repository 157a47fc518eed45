using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// Runs a stack of layers, optionally with activation checkpointing: with an interval k ≥ 1 (in training) the layers
/// run in consecutive chunks of k, each chunk one <c>DeepSpeed.Checkpointing.Checkpoint</c> segment — only the
/// chunk's input is kept and its activations are recomputed in backward (DeepSpeed's
/// <c>activation_checkpoint_interval</c>, the Gaudi guide's <c>checkpointed_forward</c>).
/// </summary>
public static class CheckpointedLayers
{
    /// <summary>Runs <paramref name="layers"/> in order on <paramref name="x"/>.</summary>
    /// <param name="layers">The layers.</param>
    /// <param name="interval">0: no checkpointing; k ≥ 1: checkpoint chunks of k layers.</param>
    /// <param name="training">Whether the model is in training mode (checkpointing is for backward only).</param>
    /// <param name="x">The first layer's input.</param>
    public static Tensor Forward<TLayer>(IList<TLayer> layers, int interval, bool training, Tensor x) where TLayer : nn.Module<Tensor, Tensor>
    {
        ArgumentNullException.ThrowIfNull(layers);
        if (interval == 0 || !training)
        {
            foreach (var layer in layers) x = layer.call(x);
            return x;
        }
        for (int first = 0; first < layers.Count; first += interval)
        {
            int from = first, to = Math.Min(layers.Count, first + interval);
            x = DeepSpeed.Checkpointing.Checkpoint(input =>
            {
                var y = input;
                for (int i = from; i < to; i++) y = layers[i].call(y);
                return y;
            }, x);
        }
        return x;
    }
}
