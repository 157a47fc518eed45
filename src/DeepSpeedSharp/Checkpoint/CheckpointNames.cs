using DeepSpeedSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>Names used by checkpoints: tags, the <c>latest</c> file, and the module's own tensor names.</summary>
internal static class CheckpointNames
{
    /// <summary>The file naming the most recent tag (DeepSpeed's <c>latest</c>).</summary>
    public const string LatestFile = "latest";

    /// <summary>
    /// The file of data-parallel rank <paramref name="dpRank"/> of model-parallel rank <paramref name="mpRank"/>: its fp32
    /// master pieces, optimizer state and RNG state (DeepSpeed's <c>zero_pp_rank_D_mp_rank_XX_optim_states</c>).
    /// </summary>
    public static string OptimStatesFile(int dpRank, int mpRank) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"zero_pp_rank_{dpRank}_mp_rank_{mpRank:D2}_optim_states.safetensors");

    /// <summary>The buffers and frozen parameters of model-parallel rank <paramref name="mpRank"/> (DeepSpeed's <c>mp_rank_XX_model_states</c>).</summary>
    public static string ModelStatesFile(int mpRank) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"mp_rank_{mpRank:D2}_model_states.safetensors");

    /// <summary>
    /// The weights of pipeline layer <paramref name="layer"/> (DeepSpeed's <c>layer_LL[-RANKREPR]-model_states</c>, where
    /// RANKREPR is the topology's rank representation without the data and pipe axes, e.g. <c>model_01</c>).
    /// </summary>
    public static string LayerFile(int layer, string rankRepr) =>
        string.Create(System.Globalization.CultureInfo.InvariantCulture, $"layer_{layer:D2}{(rankRepr.Length > 0 ? "-" + rankRepr : "")}-model_states.safetensors");

    /// <summary>DeepSpeed's default tag.</summary>
    public static string DefaultTag(long globalSteps) => $"global_step{globalSteps}";

    /// <summary>Rejects tags that are not a single, visible directory name.</summary>
    public static void CheckTag(string tag)
    {
        if (string.IsNullOrWhiteSpace(tag) || tag.StartsWith('.') || tag == LatestFile ||
            tag.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || tag.Contains('/') || tag.Contains('\\'))
            throw new ArgumentException($"checkpoint tag '{tag}' is not usable as a directory name: use letters, digits, '_', '-' or '.', not starting with '.' and not '{LatestFile}'");
    }

    /// <summary>The file naming the most recent universal tag (DeepSpeed's <c>latest_universal</c>, written by
    /// <c>ds_to_universal.py</c>), read first when <c>checkpoint.load_universal</c> is true.</summary>
    public const string LatestUniversalFile = "latest_universal";

    /// <summary>The tag <paramref name="file"/> (<c>latest</c>) names in <paramref name="directory"/>, or null when there is no such file.</summary>
    public static string? ReadLatest(string directory, string file = LatestFile)
    {
        var path = Path.Combine(directory, file);
        if (!File.Exists(path)) return null;
        var tag = File.ReadAllText(path).Trim();
        if (tag.Length == 0) throw new InvalidDataException($"'{path}' is empty: it should name a checkpoint tag");
        return tag;
    }

    /// <summary>The module's names of the layout's parameters, in layout order.</summary>
    public static string[] Of(nn.Module module, FlatLayout layout)
    {
        var byHandle = new Dictionary<IntPtr, string>();
        foreach (var (name, p) in module.named_parameters()) byHandle.TryAdd(p.Handle, name);
        return layout.Parameters.Select((p, i) => byHandle.TryGetValue(p.Handle, out var n) ? n
            : throw new InvalidOperationException($"trainable parameter {i} is not a parameter of the module {module.GetType().Name}")).ToArray();
    }

    /// <summary>
    /// The names a loading module looks its parameters up by: the unsplit model's (<see cref="IModelNameMap"/>, a
    /// pipeline stage with <c>ModelNames</c>), else its own. Saved parameters are found by <see cref="CheckpointParameter.ExportName"/>,
    /// so a plain module's and a pipeline module's checkpoints load into each other when the pipeline maps its names.
    /// </summary>
    public static string[] Keys(nn.Module module, string[] names) =>
        module is IModelNameMap map ? names.Select(n => map.ModelNameOf(n) ?? n).ToArray() : names;

    /// <summary>The module's buffers and the parameters outside <paramref name="trainable"/> (frozen ones), by name.</summary>
    public static Dictionary<string, Tensor> ModuleStates(nn.Module module, IReadOnlySet<IntPtr> trainable)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var (name, p) in module.named_parameters())
            if (!trainable.Contains(p.Handle)) result[name] = p;
        foreach (var (name, b) in module.named_buffers()) result.TryAdd(name, b);
        return result;
    }
}
