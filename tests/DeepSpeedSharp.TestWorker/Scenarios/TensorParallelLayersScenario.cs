using DeepSpeedSharp.Comm;
using DeepSpeedSharp.TensorParallel;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `tp-layers`: on N ranks as one tensor-parallel group, a tiny LM (vocab-parallel embedding → column-parallel →
/// gelu → row-parallel → column-parallel head → vocab-parallel cross-entropy) against the same layers built with
/// tp = 1 from the same seed, with and without sequence parallelism: the loss must equal the reference's and every
/// weight gradient the matching slice of the reference's gradient (sequence-parallel ones after summing over the tensor
/// group). Also checks the vocab-parallel cross-entropy against F.cross_entropy. Prints "OK ..." or the failures.
/// </summary>
public sealed class TensorParallelLayersScenario : IScenario
{
    public string Name => "tp-layers";

    private const int Vocab = 16, Dim = 8, Hidden = 12;

    private sealed class TinyLm(IModelParallelUnit? mpu, bool sp)
    {
        public readonly VocabParallelEmbedding Emb = new(Vocab, Dim, mpu, sequenceParallel: sp, init: t => nn.init.normal_(t, 0, 0.5));
        public readonly ColumnParallelLinear Up = new(Dim, Hidden, mpu, gatherOutput: false, sequenceParallel: sp);
        public readonly RowParallelLinear Down = new(Hidden, Dim, mpu, sequenceParallel: sp);
        public readonly ColumnParallelLinear Head = new(Dim, Vocab, mpu, hasBias: false, gatherOutput: false, sequenceParallel: sp);

        public Tensor Loss(Tensor ids, Tensor targets, ProcessGroup? group, int tpRank, int tpSize)
        {
            var h = Emb.call(ids);
            h = h + Down.call(nn.functional.gelu(Up.call(h)));
            var logits = Head.call(h);
            return TensorParallelRegions.VocabParallelCrossEntropy(logits, targets, group, tpRank * (Vocab / tpSize)).mean();
        }

        public IEnumerable<(string Name, Parameter P)> Parameters() =>
        [("emb", Emb.Weight), ("up.w", Up.Weight), ("up.b", Up.Bias!), ("down.w", Down.Weight), ("down.b", Down.Bias!), ("head", Head.Weight)];
    }

    public int Run(string[] args)
    {
        Dist.Initialize(null, TimeSpan.FromSeconds(60));
        var failures = new List<string>();
        try
        {
            using var grid = PipelineParallelGrid.Create(1, Dist.WorldSize);
            int rank = grid.GetTensorModelParallelRank(), size = grid.GetTensorModelParallelWorldSize();
            var group = grid.GetTensorModelParallelGroup();
            var g = new Generator(3);
            var ids = randint(0, Vocab, [2, 4 * size], generator: g);
            var targets = randint(0, Vocab, [2, 4 * size], generator: g);

            foreach (bool sp in new[] { false, true })
            {
                manual_seed(7);
                var reference = new TinyLm(null, false);
                manual_seed(7);
                var parallel = new TinyLm(grid, sp);
                var refLoss = reference.Loss(ids, targets, null, 0, 1);
                // The vocab-parallel cross-entropy on one rank is F.cross_entropy.
                using (no_grad())
                {
                    var h = reference.Emb.call(ids);
                    h = h + reference.Down.call(nn.functional.gelu(reference.Up.call(h)));
                    var plain = nn.functional.cross_entropy(reference.Head.call(h).view(-1, Vocab), targets.view(-1));
                    Expect(failures, $"sp={sp}: one-rank vocab-parallel cross-entropy", refLoss.item<float>(), plain.item<float>());
                }
                var loss = parallel.Loss(ids, targets, group, rank, size);
                Expect(failures, $"sp={sp}: loss", refLoss.item<float>(), loss.item<float>());
                refLoss.backward();
                loss.backward();
                foreach (var ((name, p), (_, r)) in parallel.Parameters().Zip(reference.Parameters()))
                {
                    var attrs = p.GetParallelAttributes();
                    Tensor expected = r.grad!;
                    if (attrs.TensorModelParallel)
                    {
                        long n = r.shape[attrs.PartitionDim] / size;
                        expected = r.grad!.narrow(attrs.PartitionDim, rank * n, n);
                    }
                    var got = p.grad!.clone();
                    if (attrs.SequenceParallel) group.AllReduce(got); // Megatron's all-reduce of sequence-parallel gradients
                    float diff = (got - expected).abs().max().item<float>();
                    if (diff > 1e-5f) failures.Add($"sp={sp}: gradient of {name} differs from the reference slice by {diff}");
                    if (sp && name == "down.b" && !attrs.SequenceParallel) failures.Add("sp=True: the row-parallel bias is not marked sequence-parallel");
                }
            }
            Console.WriteLine(failures.Count == 0 ? $"OK rank {Dist.Rank} tp {size}" : string.Join("\n", failures));
            return failures.Count == 0 ? 0 : 1;
        }
        finally
        {
            Dist.Destroy();
        }
    }

    private static void Expect(List<string> failures, string what, float expected, float got)
    {
        if (Math.Abs(expected - got) > 1e-5f) failures.Add($"{what}: expected {expected}, got {got}");
    }
}
