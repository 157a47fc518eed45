using static TorchSharp.torch;

namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// DeepSpeed's <c>LayerSpec(typename, *args)</c>: how to build one layer of a pipeline module, so that the layer is built
/// only on the stage that owns it. <see cref="TypeName"/> is what <c>type:REGEX</c> partitioning matches and
/// <see cref="TrainableParameterCount"/> what <c>parameters</c> partitioning balances; when they are not given, the layer is
/// built once to find them and disposed (as DeepSpeed builds every layer to count its parameters).
/// </summary>
public class LayerSpec
{
    private readonly Func<nn.Module<Tensor, Tensor>> build;
    private string? typeName;
    private long? parameterCount;

    /// <summary>A layer built by <paramref name="build"/>, with an optional type name and trainable parameter count.</summary>
    public LayerSpec(Func<nn.Module<Tensor, Tensor>> build, string? typeName = null, long? trainableParameterCount = null)
    {
        this.build = build ?? throw new ArgumentNullException(nameof(build));
        this.typeName = typeName;
        parameterCount = trainableParameterCount;
    }

    /// <summary>Builds the layer.</summary>
    public nn.Module<Tensor, Tensor> Build() => build();

    /// <summary>The layer's type name, for <c>type:REGEX</c> partitioning and the printed partition.</summary>
    public string TypeName
    {
        get
        {
            if (typeName == null) Inspect();
            return typeName!;
        }
    }

    /// <summary>Elements of the layer's parameters that require gradients.</summary>
    public long TrainableParameterCount
    {
        get
        {
            if (parameterCount == null) Inspect();
            return parameterCount!.Value;
        }
    }

    private void Inspect()
    {
        using var layer = build();
        typeName ??= layer.GetType().Name;
        parameterCount ??= layer.parameters().Where(p => p.requires_grad).Sum(p => p.numel());
    }

    /// <summary>A layer without parameters that computes <paramref name="function"/> (DeepSpeed accepts plain callables, e.g.
    /// <c>lambda x: x.transpose(0, 1)</c>, in a pipeline's layer list).</summary>
    public static LayerSpec Function(string name, Func<Tensor, Tensor> function)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(function);
        return new LayerSpec(() => new FunctionLayer(name, function), name, 0);
    }

    /// <summary>A spec for modules of type <typeparamref name="T"/>.</summary>
    public static LayerSpec Of<T>(Func<T> build) where T : nn.Module<Tensor, Tensor> => new(build, typeof(T).Name);

    /// <inheritdoc/>
    public override string ToString() => $"LayerSpec({TypeName})";
}

/// <summary>
/// DeepSpeed's <c>TiedLayerSpec(key, typename, *args, forward_fn, tied_weight_attr)</c>: layers with the same
/// <see cref="Key"/> share their <see cref="TiedWeightAttributes"/> (e.g. the embedding and the LM head): one instance
/// per stage that holds them, whose tied gradients are summed over those stages before the optimizer step.
/// <see cref="ForwardFn"/> replaces the module's forward at this position (e.g. logits = x · Eᵀ with the embedding's weight).
/// </summary>
public sealed class TiedLayerSpec : LayerSpec
{
    /// <param name="key">The tie group's name.</param>
    /// <param name="build">Builds the module.</param>
    /// <param name="typeName">The type name (for partitioning).</param>
    /// <param name="forwardFn">What this position computes with the shared module (null: its own forward).</param>
    /// <param name="tiedWeightAttributes">Names of the shared parameters (default <c>weight</c>).</param>
    public TiedLayerSpec(string key, Func<nn.Module<Tensor, Tensor>> build, string? typeName = null,
        Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>? forwardFn = null, IReadOnlyList<string>? tiedWeightAttributes = null)
        : base(build, typeName)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(key);
        Key = key;
        ForwardFn = forwardFn;
        TiedWeightAttributes = tiedWeightAttributes ?? ["weight"];
    }

    /// <summary>The tie group's name.</summary>
    public string Key { get; }

    /// <summary>What this position computes with the shared module; null for its own forward.</summary>
    public Func<nn.Module<Tensor, Tensor>, Tensor, Tensor>? ForwardFn { get; }

    /// <summary>Names of the shared parameters.</summary>
    public IReadOnlyList<string> TiedWeightAttributes { get; }

    /// <inheritdoc/>
    public override string ToString() => $"TiedLayerSpec({Key}, {TypeName})";
}

/// <summary>A parameterless layer that applies a function (see <see cref="LayerSpec.Function"/>).</summary>
internal sealed class FunctionLayer(string name, Func<Tensor, Tensor> function) : nn.Module<Tensor, Tensor>(name)
{
    public override Tensor forward(Tensor input) => function(input);
}
