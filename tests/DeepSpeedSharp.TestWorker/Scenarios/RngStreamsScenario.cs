using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using static TorchSharp.torch;
using Ckpt = DeepSpeedSharp.DeepSpeed.Checkpointing;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `rng-streams TP`: on a tensor TP × data (world / TP) grid, after <c>ModelParallelManualSeed(seed, grid)</c>, a dropout mask drawn from the default stream (a replicated region) must be the same on
/// every rank, and one drawn inside <c>GetRngTracker().Fork()</c> (a tensor-parallel region) the same across
/// data-parallel replicas of a tensor rank but different between tensor ranks. Prints "OK ..." or the failures.
/// </summary>
public sealed class RngStreamsScenario : IScenario
{
    public string Name => "rng-streams";

    public int Run(string[] args)
    {
        int tp = int.Parse(args[0]);
        Dist.Initialize(null, TimeSpan.FromSeconds(60));
        try
        {
            using var grid = PipelineParallelGrid.Create(1, tp);
            Ckpt.ModelParallelManualSeed(1234, grid);
            var replicated = nn.functional.dropout(ones(64), 0.5);
            Tensor parallel;
            using (Ckpt.GetRngTracker().Fork()) parallel = nn.functional.dropout(ones(64), 0.5);
            var all = zeros(Dist.WorldSize * 128);
            Dist.World.AllGather(all, cat([replicated, parallel]));
            var rows = all.view(Dist.WorldSize, 2, 64);
            var failures = new List<string>();
            for (int r = 0; r < Dist.WorldSize; r++)
            {
                var c = grid.Topology.GetCoord(r);
                if (!rows[r, 0].eq(rows[0, 0]).all().item<bool>()) failures.Add($"rank {r}: the replicated-region mask differs from rank 0's");
                for (int q = 0; q < r; q++)
                {
                    var d = grid.Topology.GetCoord(q);
                    bool same = rows[r, 1].eq(rows[q, 1]).all().item<bool>();
                    if (c.Model == d.Model && !same) failures.Add($"ranks {q} and {r} (tensor rank {c.Model}, data {d.Data}/{c.Data}): parallel-region masks differ");
                    if (c.Model != d.Model && same) failures.Add($"ranks {q} and {r} (tensor ranks {d.Model}/{c.Model}): parallel-region masks are equal");
                }
            }
            Console.WriteLine(failures.Count == 0 ? $"OK rank {Dist.Rank}" : string.Join("\n", failures));
            return failures.Count == 0 ? 0 : 1;
        }
        finally
        {
            Ckpt.Reset();
            Dist.Destroy();
        }
    }
}
