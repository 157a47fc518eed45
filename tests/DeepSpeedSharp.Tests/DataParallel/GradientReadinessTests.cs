using DeepSpeedSharp.DataParallel;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.DataParallel;

public class GradientReadinessTests
{
    [Fact]
    public void LaterLayersAreReportedDuringBackwardWithFinalGradients()
    {
        torch.manual_seed(2);
        var model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2));
        var parameters = model.parameters().ToList();
        var reports = new List<(int[] Params, bool DuringBackward, float[] GradSums)>();
        bool inBackward = false;
        using var readiness = new GradientReadiness(model, parameters, ps =>
            reports.Add((ps.ToArray(), inBackward, ps.Select(i => parameters[i].grad is null ? float.NaN : parameters[i].grad!.sum().item<float>()).ToArray())));
        readiness.Arm();
        var x = torch.randn(5, 3).requires_grad_(false);
        var loss = model.call(x).square().sum();
        inBackward = true;
        loss.backward();
        inBackward = false;
        readiness.FinishPass();

        // A module's parameters are reported when the module that ran before it has its input gradient: the last
        // Linear (params 4, 5) once the middle one's backward is through. The first Linear's input needs no gradient
        // (no tap), so the middle and first layers are reported when backward ends.
        Assert.Equal(2, reports.Count);
        Assert.Equal(new[] { 4, 5 }, reports[0].Params);
        Assert.True(reports[0].DuringBackward);
        Assert.Equal(new[] { 0, 1, 2, 3 }, reports[1].Params);
        Assert.False(reports[1].DuringBackward);
        // Gradients reported during backward were already final.
        for (int r = 0; r < 1; r++)
            for (int k = 0; k < reports[r].Params.Length; k++)
                Assert.Equal(parameters[reports[r].Params[k]].grad!.sum().item<float>(), reports[r].GradSums[k]);
    }

    [Fact]
    public void TheGradientsTheTapsPassOnAreReleasedWhenThePassEnds()
    {
        // TorchSharp keeps a custom function's backward results until its graph node is finalized; the taps hand theirs
        // to the readiness, which disposes them when backward is over (autograd holds its own references by then).
        torch.manual_seed(3);
        var model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Tanh(), nn.Linear(4, 2));
        var parameters = model.parameters().ToList();
        using var readiness = new GradientReadiness(model, parameters, _ => { });
        var expected = new List<float[]>();
        for (int pass = 0; pass < 2; pass++)
        {
            using var scope = NewDisposeScope();
            readiness.Arm();
            model.zero_grad();
            var loss = model.call(torch.randn(5, 3)).square().sum();
            loss.backward();
            Assert.Equal(2, readiness.PassedOnCount); // the taps before the second and third Linear
            readiness.FinishPass();
            Assert.Equal(0, readiness.PassedOnCount);
            // The parameters' gradients are whole after the release.
            foreach (var p in parameters) Assert.True(p.grad is not null && !p.grad.IsInvalid && float.IsFinite(p.grad.sum().item<float>()));
        }
    }
}
