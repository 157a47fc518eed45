namespace DeepSpeedSharp.Training;

/// <summary>
/// A module whose parameter names are not the unsplit model's — a pipeline stage's layer-index names
/// (<c>3.self_attn.q_proj.weight</c>) for what the model calls <c>model.layers.2.self_attn.q_proj.weight</c>. Checkpoints
/// record the model's name beside each parameter's own, so that an export writes the unsplit model's names.
/// </summary>
public interface IModelNameMap
{
    /// <summary>The unsplit model's name of parameter (or buffer) <paramref name="name"/> of this module, or null when it has none.</summary>
    string? ModelNameOf(string name);
}
