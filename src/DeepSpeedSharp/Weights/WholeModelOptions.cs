using static TorchSharp.torch;

namespace DeepSpeedSharp.Weights;

/// <summary>
/// A vocabulary padded for the model (Megatron pads the embedding and output rows to a multiple of
/// <c>make_vocab_size_divisible_by</c> × tensor-parallel size): tensors whose whole-model dimension 0 is
/// <paramref name="PaddedSize"/> hold <paramref name="Size"/> real rows. A file may hold either count: loading a file
/// with <paramref name="Size"/> rows fills the padding rows with zeros; saving writes <paramref name="Size"/> rows.
/// </summary>
/// <param name="Size">Rows that are real tokens.</param>
/// <param name="PaddedSize">Rows the model has (at least <paramref name="Size"/>).</param>
public sealed record VocabularyPadding(long Size, long PaddedSize)
{
    internal void Validate()
    {
        if (Size < 1 || PaddedSize < Size)
            throw new ArgumentException($"vocabulary padding: the size ({Size}) must be at least 1 and at most the padded size ({PaddedSize})");
    }
}

/// <summary>How <see cref="WholeModelWeights"/> maps a model (or pipeline stage) onto a whole-model weights file.</summary>
public sealed class WholeModelOptions
{
    /// <summary>
    /// The file's name of a module parameter (default: a pipeline stage's <see cref="Pipeline.PipelineModule.ModelNames"/>,
    /// else the parameter's own name): the map from a stage's layer-index names (<c>3.attn.weight</c>) to the unsplit
    /// model's (<c>h.2.attn.weight</c>).
    /// </summary>
    public Func<string, string>? FileName { get; init; }

    /// <summary>The vocabulary's real and padded row counts, when the model pads it.</summary>
    public VocabularyPadding? Vocabulary { get; init; }

    /// <summary>Loading: tensors of the file that no parameter asks for are an error (default true). Never checked on
    /// a pipeline stage, which holds only its own layers.</summary>
    public bool Strict { get; init; } = true;

    /// <summary>Saving: the dtype written (default: each parameter's own).</summary>
    public ScalarType? DType { get; init; }

    internal string NameInFile(string parameterName) => FileName?.Invoke(parameterName) ?? parameterName;

    /// <summary>These options, with a pipeline stage's <see cref="Pipeline.PipelineModule.ModelNames"/> as the name map when none is given.</summary>
    internal WholeModelOptions For(TorchSharp.torch.nn.Module module) =>
        FileName is null && module is Pipeline.PipelineModule { ModelNames: { } names }
            ? new WholeModelOptions { FileName = n => names.GetValueOrDefault(n, n), Vocabulary = Vocabulary, Strict = Strict, DType = DType }
            : this;
}
