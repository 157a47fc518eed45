using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// The independent reference training loop of the scenarios' plain references: no DeepSpeedSharp engine, strategy or
/// config — <c>torch.optim.AdamW</c> (betas 0.9/0.95, eps 1e-8, weight decay 0.01) over the unsplit model's parameters;
/// every step the micro-batches of all data-parallel ranks, each loss divided by their number, <c>backward</c>,
/// <c>clip_grad_norm_</c> when clipping, <c>step</c>.
/// </summary>
public static class PlainLoop
{
    /// <summary>Returns per step (mean loss over the global batch, gradient norm before clipping).</summary>
    /// <param name="parameters">The model's parameters.</param>
    /// <param name="microLoss">The loss of micro-batch (step, data-parallel rank, micro-batch index).</param>
    /// <param name="steps">Optimizer steps.</param>
    /// <param name="dp">Data-parallel ranks whose micro-batches make the global batch.</param>
    /// <param name="gas">Micro-batches per rank and step.</param>
    /// <param name="clip">Global-norm clip; 0 = none.</param>
    /// <param name="lr">Learning rate.</param>
    /// <param name="exactNorms">When given, receives every step's gradient norm computed in fp64 (before clipping), the
    /// yardstick for torch's own fp32 norm.</param>
    /// <param name="optimizer">Another optimizer than the AdamW above (over <paramref name="parameters"/>); <paramref name="lr"/> is then unused.</param>
    /// <param name="afterStep">Called after every optimizer step (e.g. an LR schedule's step).</param>
    public static List<(double Loss, double Norm)> Train(IReadOnlyList<Parameter> parameters, Func<long, int, int, Tensor> microLoss,
        int steps, int dp, int gas, double clip, double lr, List<double>? exactNorms = null, optim.Optimizer? optimizer = null, Action? afterStep = null)
    {
        var opt = optimizer ?? optim.AdamW(parameters, lr: lr, beta1: 0.9, beta2: 0.95, eps: 1e-8, weight_decay: 0.01);
        var result = new List<(double, double)>();
        for (long step = 0; step < steps; step++)
        {
            opt.zero_grad();
            double lossSum = 0;
            for (int d = 0; d < dp; d++)
                for (int m = 0; m < gas; m++)
                {
                    using var inner = NewDisposeScope();
                    var loss = microLoss(step, d, m);
                    lossSum += loss.item<float>();
                    (loss / (dp * gas)).backward();
                }
            exactNorms?.Add(Math.Sqrt(parameters.Sum(p => p.grad!.to(ScalarType.Float64).square().sum().item<double>())));
            double norm = clip > 0
                ? nn.utils.clip_grad_norm_(parameters, clip)
                : Math.Sqrt(parameters.Sum(p => Math.Pow(p.grad!.norm().item<float>(), 2)));
            opt.step();
            afterStep?.Invoke();
            result.Add((lossSum / (dp * gas), norm));
        }
        return result;
    }
}
