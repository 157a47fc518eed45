using DeepSpeedSharp.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// Moves weights between a sample's whole model and the stage of its <see cref="PipelineModule"/> that this rank holds,
/// through a name mapping (e.g. GPT's <c>transformer.h.2.attn.c_attn.weight</c> → the pipeline's
/// <c>3.attn.c_attn.weight</c>). With it a pipeline run starts from exactly the weights the unsplit model has for the same
/// seed (or <c>--init-weights</c> file). (Saving goes through the library's <c>WholeModelWeights</c>.)
/// </summary>
public static class PipelineWeights
{
    /// <summary>
    /// Copies into every parameter and buffer of <paramref name="stage"/> the tensor of <paramref name="whole"/> that
    /// <paramref name="toPipelineName"/> maps to its name. Every tensor of the stage must receive one, with the same shape.
    /// </summary>
    /// <param name="whole">The unsplit model, built (and initialised) the way a run without pipeline parallelism builds it.</param>
    /// <param name="stage">This rank's pipeline stage.</param>
    /// <param name="toPipelineName">The whole model's name → the pipeline module's name (DeepSpeed's layer-index names).</param>
    /// <exception cref="InvalidOperationException">A stage tensor has no counterpart, or its shape differs.</exception>
    public static void CopyStage(nn.Module whole, PipelineModule stage, Func<string, string> toPipelineName)
    {
        ArgumentNullException.ThrowIfNull(whole);
        ArgumentNullException.ThrowIfNull(stage);
        ArgumentNullException.ThrowIfNull(toPipelineName);
        var source = Tensors(whole).ToDictionary(t => toPipelineName(t.Name), t => (t.Name, t.Tensor), StringComparer.Ordinal);
        using var noGrad = no_grad();
        foreach (var (name, target) in Tensors(stage))
        {
            if (!source.TryGetValue(name, out var from))
                throw new InvalidOperationException($"pipeline stage {stage.StageId}: no tensor of the whole model maps to '{name}'");
            if (!from.Tensor.shape.SequenceEqual(target.shape))
                throw new InvalidOperationException($"pipeline stage {stage.StageId}: '{from.Name}' has shape [{string.Join(", ", from.Tensor.shape)}] " +
                                                    $"but '{name}' has [{string.Join(", ", target.shape)}]");
            target.copy_(from.Tensor);
        }
    }

    private static IEnumerable<(string Name, Tensor Tensor)> Tensors(nn.Module module) =>
        module.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(module.named_buffers().Select(b => (b.name, b.buffer)));
}
