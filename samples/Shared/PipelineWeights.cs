using DeepSpeedSharp.Pipeline;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// Moves weights between a sample's whole model and the stage of its <see cref="PipelineModule"/> that this rank holds,
/// through a name mapping (e.g. GPT's <c>transformer.h.2.attn.c_attn.weight</c> → the pipeline's
/// <c>3.attn.c_attn.weight</c>). With it a pipeline run starts from exactly the weights the unsplit model has for the same
/// seed (or <c>--init-weights</c> file), and <c>--save-weights</c> writes a file the unsplit model loads.
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

    /// <summary>
    /// Collects the stages' parameters on the first stage of global rank 0's pipeline and copies them into
    /// <paramref name="whole"/> there, which can then be saved as the unsplit model. Collective over that pipeline's
    /// ranks: call it on every rank (ranks of other pipelines, which hold the same weights, return at once).
    /// </summary>
    /// <param name="stage">This rank's pipeline stage.</param>
    /// <param name="whole">Global rank 0: the unsplit model to fill (its parameters are overwritten). Other ranks: null.</param>
    /// <param name="toPipelineName">The whole model's name → the pipeline module's name.</param>
    /// <param name="parameterNames">Every parameter name of the whole model, in the same order on every rank.</param>
    public static void GatherToRankZero(PipelineModule stage, nn.Module? whole, Func<string, string> toPipelineName, IReadOnlyList<string> parameterNames)
    {
        ArgumentNullException.ThrowIfNull(stage);
        var grid = stage.Grid;
        var pipe = grid.GetPipelineModelParallelGroup()!;
        if (!pipe.GlobalRanks.Contains(0)) return; // another pipeline: the same weights, held by other ranks
        bool collector = grid.GlobalRank == 0;
        if (collector && whole == null) throw new ArgumentNullException(nameof(whole), "global rank 0 needs the whole model to collect the stages into");
        var local = stage.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal);
        var targets = collector ? whole!.named_parameters().ToDictionary(p => p.name, p => p.parameter, StringComparer.Ordinal) : null;
        using var noGrad = no_grad();
        foreach (var name in parameterNames)
        {
            string pipeName = toPipelineName(name);
            int owner = StageOfLayer(stage, pipeName);
            if (owner == 0 && collector)
            {
                targets![name].copy_(local[pipeName]);
            }
            else if (owner == grid.StageId)
            {
                using var send = local[pipeName].detach().to(ScalarType.Float32).contiguous();
                pipe.Send(send, 0);
            }
            else if (collector)
            {
                using var received = zeros(targets![name].shape, ScalarType.Float32);
                pipe.Recv(received, grid.StageToGlobal(owner));
                targets[name].copy_(received);
            }
        }
    }

    /// <summary>The stage owning pipeline parameter <paramref name="pipeName"/> (named "LAYER.rest").</summary>
    private static int StageOfLayer(PipelineModule stage, string pipeName)
    {
        int dot = pipeName.IndexOf('.');
        if (dot <= 0 || !int.TryParse(pipeName[..dot], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer))
            throw new ArgumentException($"'{pipeName}' is not a pipeline layer parameter name (LAYER.name); tied modules are not supported here");
        if (layer >= stage.Specs.Count) throw new ArgumentException($"layer {layer} of '{pipeName}' is outside the pipeline's {stage.Specs.Count} layers");
        return stage.StageOfLayer(layer);
    }

    private static IEnumerable<(string Name, Tensor Tensor)> Tensors(nn.Module module) =>
        module.named_parameters().Select(p => (p.name, (Tensor)p.parameter))
            .Concat(module.named_buffers().Select(b => (b.name, b.buffer)));
}
