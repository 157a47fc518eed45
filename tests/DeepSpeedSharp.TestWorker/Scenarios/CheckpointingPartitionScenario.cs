using DeepSpeedSharp.ActivationCheckpointing;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;
using Ckpt = DeepSpeedSharp.DeepSpeed.Checkpointing;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `checkpointing-partition [cpu] [contiguous] [grid]`: the world is one model-parallel group (with `grid`: a
/// pipe 2 × tensor 2 <see cref="PipelineParallelGrid"/>, whose tensor group of 2 — not its model group of 4 — is what
/// activations are partitioned across); every rank holds the same
/// weights and input (replicated, as tensor-parallel layers see them). Three checkpointed dropout stages run with
/// partition_activations (plus the options given); each rank must keep only its 1/mp share of every saved input, and
/// the gradients must be bit-identical to an uncheckpointed run on the same rank. Prints "OK ..." or the failure.
/// </summary>
public sealed class CheckpointingPartitionScenario : IScenario
{
    public string Name => "checkpointing-partition";

    public int Run(string[] args)
    {
        bool cpu = args.Contains("cpu"), contiguous = args.Contains("contiguous"), useGrid = args.Contains("grid");
        Dist.Initialize(null, TimeSpan.FromSeconds(60));
        try
        {
            IModelParallelUnit mpu = useGrid ? PipelineParallelGrid.Create(pipelineParallelSize: 2, tensorParallelSize: 2) : ModelParallelUnit.FromWorld(Dist.WorldSize);
            using var owner = (IDisposable)mpu;
            Ckpt.Configure(mpu, partitionActivations: true, checkpointInCpu: cpu, contiguousCheckpointing: contiguous, numCheckpoints: contiguous ? 3 : null);
            using var scope = NewDisposeScope();
            manual_seed(11);
            var layers = Enumerable.Range(0, 3).Select(_ => (nn.Linear(13, 13), nn.Dropout(0.3))).ToArray();
            var x = randn(5, 13).requires_grad_(true); // 65 elements: not divisible by 2 ranks (padded shares)
            int mp = mpu.GetTensorModelParallelWorldSize();
            long share = (65 + mp - 1) / mp;

            (List<Tensor> grads, long saved) Step(bool checkpoint)
            {
                foreach (var (l, _) in layers) l.zero_grad();
                x.grad?.zero_();
                manual_seed(99);
                long before = Ckpt.Stats.CurrentBytes;
                var h = x;
                foreach (var (l, d) in layers)
                {
                    Tensor F(Tensor t) => t + d.call(l.call(t).tanh());
                    h = checkpoint ? Ckpt.Checkpoint(F, h) : F(h);
                }
                long saved = Ckpt.Stats.CurrentBytes - before;
                h.pow(2).sum().backward();
                Ckpt.ThrowIfBackwardFailed();
                var grads = layers.SelectMany(p => p.Item1.parameters().Select(q => q.grad!.clone())).Append(x.grad!.clone()).ToList();
                return (grads, saved);
            }

            var plain = Step(false);
            var failures = new List<string>();
            for (int step = 0; step < 2; step++)
            {
                var ckpt = Step(true);
                if (ckpt.saved != 3 * share * sizeof(float))
                    failures.Add($"step {step}: saved {ckpt.saved} bytes, expected 3 checkpoints × {share} floats (this rank's share)");
                for (int i = 0; i < plain.grads.Count; i++)
                    if (!plain.grads[i].eq(ckpt.grads[i]).all().item<bool>())
                        failures.Add($"step {step}: gradient {i} differs (max |diff| {(plain.grads[i] - ckpt.grads[i]).abs().max().item<float>()})");
            }
            Dist.World.Barrier();
            Console.WriteLine(failures.Count == 0 ? $"OK rank {Dist.Rank} mp {mp} share {share}" : string.Join("\n", failures));
            return failures.Count == 0 ? 0 : 1;
        }
        finally
        {
            Dist.Destroy();
        }
    }
}
