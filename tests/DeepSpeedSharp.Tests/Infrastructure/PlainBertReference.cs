using DeepSpeedSharp.Samples.Bert.Data;
using DeepSpeedSharp.Samples.Bert.Model;
using DeepSpeedSharp.Samples.Shared.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// The BERT sample's training hyper-parameters as the plain reference takes them: AdamW (decoupled weight decay), the
/// global-norm clip, and DeepSpeed's WarmupDecayLR with linear warm-up. The defaults are the shipped
/// <c>samples/Bert/configs/zero*.json</c>.
/// </summary>
internal sealed record PlainBertSetup(double Lr = 1e-3, double Beta1 = 0.9, double Beta2 = 0.999, double Eps = 1e-6, double WeightDecay = 0.01,
    double GradientClipping = 1.0, double WarmupMinLr = 0, double WarmupMaxLr = 1e-3, int WarmupNumSteps = 10, int TotalNumSteps = 200)
{
    /// <summary>
    /// The learning rate of optimizer step <paramref name="step"/> (0-based), written out from DeepSpeed's
    /// WarmupDecayLR: the schedule is at iteration i = step − 1 (−1 before the first step: the minimum); while
    /// i &lt; n = max(2, warmup_num_steps) it rises linearly, min + (max − min)·i/n; after, it falls linearly to 0 at
    /// total_num_steps: min + (max − min)·max(0, (total − i) / max(1, total − n)).
    /// </summary>
    public double LearningRate(int step)
    {
        int i = step - 1, n = Math.Max(2, WarmupNumSteps);
        if (i < 0) return WarmupMinLr;
        double gamma = i < n ? (double)i / n : Math.Max(0.0, (double)(TotalNumSteps - i) / Math.Max(1.0, TotalNumSteps - n));
        return WarmupMinLr + (WarmupMaxLr - WarmupMinLr) * gamma;
    }
}

/// <summary>
/// An independent reference for the BERT sample under the engine: the same <see cref="BertForMaskedLM"/> after the
/// same <c>torch.manual_seed(seed)</c>, trained in the test process by a plain TorchSharp loop over the whole global
/// batch — every data-parallel rank's micro-batches, from the sample's own <see cref="MaskedLmBatches"/> — with
/// <c>loss.backward()</c> (each micro-batch's loss divided by their number), <c>nn.utils.clip_grad_norm_</c>,
/// <c>torch.optim.AdamW</c> and the learning rate set by hand from <see cref="PlainBertSetup.LearningRate"/>. No
/// engine, strategy, DeepSpeedSharp optimizer, scheduler or config is involved. Dropout must be 0.
/// </summary>
/// <remarks>It seeds torch's process-wide generator and sets the thread count to 1 while it runs (restored afterwards),
/// so call it only from tests in <see cref="MultiProcessCollection"/>, which run alone.</remarks>
internal static class PlainBertReference
{
    /// <summary>Trains <paramref name="steps"/> steps; returns the loss of every step as the sample logs it (the mean over the global batch's micro-batches).</summary>
    /// <param name="model">The model's shape without the vocabulary (it comes from the shipped text, as in the sample).</param>
    /// <param name="ranks">Data-parallel ranks of the run it stands for.</param>
    /// <param name="microBatch">Samples per micro-batch (train_micro_batch_size_per_gpu).</param>
    /// <param name="steps">Optimizer steps.</param>
    /// <param name="setup">Optimizer, clip and schedule.</param>
    /// <param name="seed">The sample's --seed.</param>
    public static double[] Train(BertConfig model, int ranks, int microBatch, int steps, PlainBertSetup setup, int seed = 1234)
    {
        if (model.Dropout != 0) throw new NotSupportedException("the plain reference does not reproduce the engine's per-rank dropout streams; use dropout 0");
        var corpus = TextCorpus.Load(TextCorpus.DefaultPath, fullVocab: false);
        var vocabulary = new BertVocabulary(corpus.Vocabulary);
        model = model with { Vocab = vocabulary.PaddedSize };
        int globalBatch = ranks * microBatch;
        int threads = torch.get_num_threads();
        torch.set_num_threads(1);
        try
        {
            torch.manual_seed(seed);
            using var bert = new BertForMaskedLM(model);
            var parameters = bert.parameters().ToList();
            using var optimizer = torch.optim.AdamW(parameters, lr: setup.Lr, beta1: setup.Beta1, beta2: setup.Beta2, eps: setup.Eps,
                weight_decay: setup.WeightDecay);
            var batches = new MaskedLmBatches(corpus.Tokens, vocabulary, model.Seq, sequential: false, seed);
            bert.train();
            var losses = new double[steps];
            for (int step = 0; step < steps; step++)
            {
                using var scope = NewDisposeScope();
                foreach (var group in optimizer.ParamGroups) group.LearningRate = setup.LearningRate(step);
                optimizer.zero_grad();
                double lossSum = 0;
                for (int rank = 0; rank < ranks; rank++)
                {
                    var (input, labels) = batches.MicroBatch(step, rank, 0, microBatch, 1, globalBatch);
                    var loss = BertForMaskedLM.MaskedLmLoss(bert.call(input), labels);
                    lossSum += loss.item<float>();
                    (loss / ranks).backward();
                }
                nn.utils.clip_grad_norm_(parameters, setup.GradientClipping);
                optimizer.step();
                losses[step] = lossSum / ranks;
            }
            return losses;
        }
        finally
        {
            torch.set_num_threads(threads);
        }
    }
}
