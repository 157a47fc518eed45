using TorchSharp;
using static TorchSharp.torch;
using DeepSpeedSharp;

namespace DeepSpeedSharp.Tests.Checkpointing;

public class CheckpointingScratchTests
{
    [Fact]
    public void Basic()
    {
        manual_seed(1);
        var lin = nn.Linear(8, 8);
        var drop = nn.Dropout(0.5);
        var x = randn(4, 8, requires_grad: true);
        Tensor F(Tensor t) => drop.call(lin.call(t).relu());
        manual_seed(5);
        F(x).sum().backward();
        var g1 = lin.weight!.grad!.clone(); var gx1 = x.grad!.clone();
        lin.zero_grad(); x.grad!.zero_();
        manual_seed(5);
        DeepSpeed.Checkpointing.Checkpoint(F, x).sum().backward();
        Assert.True(g1.eq(lin.weight!.grad!).all().item<bool>());
        Assert.True(gx1.eq(x.grad!).all().item<bool>());
    }

    [Fact]
    public void Twice()
    {
        var lin = nn.Linear(8, 8);
        var x = randn(4, 8, requires_grad: true);
        var y = DeepSpeed.Checkpointing.Checkpoint(t => lin.call(t), x).sum();
        y.backward(retain_graph: true);
        y.backward();
        var ex = Record.Exception(() => DeepSpeed.Checkpointing.ThrowIfBackwardFailed());
        Console.WriteLine("EXC: " + ex);
        Assert.NotNull(ex);
    }
}
