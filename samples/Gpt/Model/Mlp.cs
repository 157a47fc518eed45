using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Samples.Gpt.Model;

/// <summary>The transformer MLP: d → 4d, exact (erf) GELU, 4d → d.</summary>
public sealed class Mlp : nn.Module<Tensor, Tensor>
{
    private readonly Linear c_fc;
    private readonly Linear c_proj;
    private readonly Dropout dropout;

    public Mlp(GptConfig config) : base(nameof(Mlp))
    {
        c_fc = nn.Linear(config.DModel, 4 * config.DModel);
        c_proj = nn.Linear(4 * config.DModel, config.DModel);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var hidden = c_fc.call(x);
        using var activated = nn.functional.gelu(hidden, GELU.Approximate.none);
        using var projected = c_proj.call(activated);
        return dropout.call(projected);
    }
}
