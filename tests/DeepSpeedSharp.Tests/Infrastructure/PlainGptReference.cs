using DeepSpeedSharp.Samples.Gpt;
using DeepSpeedSharp.Samples.Gpt.Data;
using DeepSpeedSharp.Samples.Gpt.Model;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// AdamW hyper-parameters of the plain reference, passed verbatim to <c>torch.optim.AdamW</c>. The defaults are the
/// sample's own optimizer (and the tests' configs): lr 1e-3, betas 0.9/0.95, eps 1e-8, weight decay 0.01 — note that
/// TorchSharp's own defaults differ (β2 0.999, weight decay 0), so they are always given explicitly.
/// </summary>
internal sealed record PlainAdamW(double Lr = 1e-3, double Beta1 = 0.9, double Beta2 = 0.95, double Eps = 1e-8, double WeightDecay = 0.01);

/// <summary>What the plain reference reports per step.</summary>
/// <param name="Losses">The loss of every step: the mean over the micro-batches of the global batch (the sample's --loss-log).</param>
/// <param name="GradientNorms">The global L2 norm of the gradients before clipping, per step (NaN when not clipping).</param>
internal sealed record PlainGptRun(double[] Losses, double[] GradientNorms);

/// <summary>
/// An independent reference for the engine: the sample GPT trained by a plain TorchSharp loop in the test process —
/// <c>GptModel</c>, <c>torch.optim.AdamW</c>, <c>loss.backward()</c>, optionally <c>clip_grad_norm_</c>, then
/// <c>optimizer.step()</c> — with no DeepSpeedSharp engine, strategy, optimizer or config type involved.
/// </summary>
/// <remarks>
/// <para>It reproduces what the sample does under the engine: <c>torch.manual_seed(seed)</c> before the model is built
/// (and <c>manual_seed(seed + 0)</c> after it, as <c>DeepSpeed.Initialize</c> does on rank 0), the synthetic corpus and
/// <see cref="BatchSampler"/> of the same seed, fp32 cross-entropy, gradients averaged over the global batch (each
/// micro-batch loss divided by the number of micro-batches in it), the global-norm clip
/// <c>clip / (norm + 1e-6)</c> when below 1, and one optimizer step per global batch. A step's loss is the mean
/// of the loss over all micro-batches of the global batch, the sample's <c>--loss-log</c> value. The learning rate is
/// constant: there is no scheduler, so compare only against configs without a "scheduler" section (and with
/// dropout 0, the synthetic corpus and random data order, as the equivalence tests use).</para>
/// <para>It seeds torch's process-wide generator and sets the process's thread count to 1 while it runs (restored
/// afterwards), so call it only from tests in <see cref="MultiProcessCollection"/>, which run alone.</para>
/// </remarks>
internal static class PlainGptReference
{
    /// <summary>The sample's default seed (<c>--seed</c>).</summary>
    public const int DefaultSeed = 1234;

    /// <summary>Trains with the model given as the sample's flags (e.g. <see cref="GptRun.SmallModel"/>).</summary>
    /// <param name="modelFlags">The sample's model flags: --vocab, --d-model, --layers, --heads, --seq, --dropout.</param>
    /// <param name="trainBatch">Global batch size (samples per optimizer step).</param>
    /// <param name="microBatch">Samples per forward/backward; must divide <paramref name="trainBatch"/>.</param>
    /// <param name="steps">Optimizer steps.</param>
    /// <param name="seed">The sample's --seed.</param>
    /// <param name="adamW">Optimizer hyper-parameters (null: <see cref="PlainAdamW"/>'s defaults).</param>
    /// <param name="gradientClipping">Global L2-norm clip; 0 = no clipping.</param>
    /// <returns>The loss (as the sample logs it) and, when clipping, the gradient norm of every step.</returns>
    public static PlainGptRun Train(string modelFlags, int trainBatch, int microBatch, int steps = 20, int seed = DefaultSeed,
        PlainAdamW? adamW = null, double gradientClipping = 0) =>
        Train(ParseModel(modelFlags), trainBatch, microBatch, steps, seed, adamW, gradientClipping);

    /// <summary>Trains the model <paramref name="model"/>; see the overload taking the sample's flags.</summary>
    public static PlainGptRun Train(GptConfig model, int trainBatch, int microBatch, int steps = 20, int seed = DefaultSeed,
        PlainAdamW? adamW = null, double gradientClipping = 0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(microBatch, 1);
        if (trainBatch % microBatch != 0)
            throw new ArgumentException($"the micro batch {microBatch} does not divide the global batch {trainBatch}");
        if (model.Dropout != 0)
            throw new NotSupportedException("the plain reference does not reproduce the engine's per-rank dropout streams; use --dropout 0");
        adamW ??= new PlainAdamW();
        int microSteps = trainBatch / microBatch;

        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            torch.manual_seed(seed);
            using var gpt = new GptModel(model, null);
            torch.manual_seed(seed); // DeepSpeed.Initialize(seed:) reseeds with seed + rank; rank 0 here
            var parameters = gpt.parameters().ToList();
            using var optimizer = torch.optim.AdamW(parameters, lr: adamW.Lr, beta1: adamW.Beta1, beta2: adamW.Beta2,
                eps: adamW.Eps, weight_decay: adamW.WeightDecay);
            var sampler = new BatchSampler(TokenCorpus.Synthetic(model.Vocab, 1 << 20, seed), model.Seq, sequential: false, seed);
            gpt.train();

            var losses = new double[steps];
            var norms = new double[steps];
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                optimizer.zero_grad();
                double lossSum = 0;
                for (int micro = 0; micro < microSteps; micro++)
                {
                    // Data-parallel rank 0 of 1 with microSteps accumulation steps: the samples of the whole global batch.
                    var (input, target) = sampler.MicroBatch(step, 0, micro, microBatch, microSteps, trainBatch);
                    var logits = gpt.call(input);
                    var loss = nn.functional.cross_entropy(logits.to(ScalarType.Float32).view(-1, model.Vocab), target.view(-1));
                    lossSum += loss.item<float>();
                    (loss / microSteps).backward();
                }
                norms[step] = gradientClipping > 0 ? nn.utils.clip_grad_norm_(parameters, gradientClipping) : double.NaN;
                optimizer.step();
                losses[step] = lossSum / microSteps;
            }
            return new PlainGptRun(losses, norms);
        }
        finally
        {
            torch.set_num_threads(threads);
        }
    }

    /// <summary>Largest absolute per-step difference between the reference losses and a run's (same length).</summary>
    public static double MaxDifference(PlainGptRun reference, GptRun run)
    {
        Assert.Equal(reference.Losses.Length, run.Losses.Length);
        return reference.Losses.Zip(run.Losses, (x, y) => Math.Abs(x - y)).Max();
    }

    /// <summary>The model shape from the sample's flags, parsed by the sample's own option parser.</summary>
    private static GptConfig ParseModel(string modelFlags)
    {
        var args = modelFlags.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var other = args.Where(a => a.StartsWith("--", StringComparison.Ordinal) && !ModelFlags.Contains(a.Split('=')[0])).ToList();
        if (other.Count > 0)
            throw new ArgumentException($"the plain reference takes only the model flags ({string.Join(" ", ModelFlags)}), not {string.Join(" ", other)}");
        return GptOptions.Parse(args).Model;
    }

    private static readonly string[] ModelFlags = { "--vocab", "--d-model", "--layers", "--heads", "--seq", "--dropout" };
}
