using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Checkpointing;

/// <summary>
/// Checkpointing tests share process-wide state (the default CPU generator, DeepSpeed.Checkpointing's settings):
/// they run alone, after the parallel test collections.
/// </summary>
[CollectionDefinition("Checkpointing", DisableParallelization = true)]
public sealed class CheckpointingCollection;

internal static class CheckpointingTestUtil
{
    /// <summary>Each parameter's gradient (cloned), by name.</summary>
    public static Dictionary<string, Tensor> Grads(nn.Module module) =>
        module.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone().DetachFromDisposeScope());

    /// <summary>Asserts every gradient is bit-identical, naming the first that is not.</summary>
    public static void AssertBitIdentical(Dictionary<string, Tensor> expected, Dictionary<string, Tensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, e) in expected)
        {
            var a = actual[name];
            bool same = e.shape.SequenceEqual(a.shape) && e.eq(a).all().item<bool>();
            Assert.True(same, $"gradient of {name} differs: max |diff| {(e - a).abs().max().item<float>()}");
        }
    }

    public static bool BitEqual(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.eq(b).all().item<bool>();

    /// <summary>A small MLP stage with dropout, the unit the tests checkpoint.</summary>
    public sealed class Stage : nn.Module<Tensor, Tensor>
    {
        private readonly TorchSharp.Modules.Linear fc1, fc2;
        private readonly TorchSharp.Modules.Dropout drop;

        public Stage(int width, double dropout) : base(nameof(Stage))
        {
            fc1 = nn.Linear(width, 2 * width);
            fc2 = nn.Linear(2 * width, width);
            drop = nn.Dropout(dropout);
            RegisterComponents();
        }

        public override Tensor forward(Tensor x)
        {
            using var scope = NewDisposeScope();
            return (x + drop.call(fc2.call(nn.functional.gelu(fc1.call(x))))).MoveToOuterDisposeScope();
        }
    }
}
