using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// Builds a <see cref="PipelineParallelGrid"/> of <c>PP TP</c> (args) on the world, prints one JSON line
/// "grid {...}" with this rank's coordinates and the members of every group, and proves each group works with an
/// all-reduce of the global ranks (the sum must equal the sum of its members).
/// </summary>
public sealed class GridScenario : IScenario
{
    public string Name => "grid";

    public int Run(string[] args)
    {
        int pp = int.Parse(args[0]), tp = int.Parse(args[1]);
        Dist.Initialize();
        using var grid = PipelineParallelGrid.Create(pp, tp);
        var names = new[] { PipelineParallelGrid.Groups.Data, PipelineParallelGrid.Groups.Pipe, PipelineParallelGrid.Groups.Tensor, PipelineParallelGrid.Groups.Model };
        foreach (var name in names)
        {
            var g = grid.GetGroup(name);
            using var t = tensor(new[] { (double)Dist.Rank }, ScalarType.Float64);
            g.AllReduce(t);
            if (t.item<double>() != g.GlobalRanks.Sum()) throw new InvalidOperationException($"all-reduce over the {name} group gave {t.item<double>()}");
        }
        var peers = new List<int>();
        if (pp > 1)
        {
            foreach (var stage in new[] { (grid.StageId + 1) % pp, (grid.StageId + pp - 1) % pp }.Distinct())
            {
                int peer = grid.StageToGlobal(stage);
                var g = grid.GetP2PGroup(peer);
                using var t = tensor(new[] { (double)Dist.Rank }, ScalarType.Float64);
                g.AllReduce(t);
                if (t.item<double>() != Dist.Rank + peer) throw new InvalidOperationException($"the stage pair group with {peer} gave {t.item<double>()}");
                peers.Add(peer);
            }
        }
        Console.WriteLine("grid " + JsonSerializer.Serialize(new
        {
            rank = Dist.Rank, pipe = grid.StageId, data = grid.DataParallelId, model = grid.TensorParallelId,
            data_group = grid.GetDataParallelGroup().GlobalRanks, pipe_group = grid.GetPipelineModelParallelGroup()!.GlobalRanks,
            tensor_group = grid.GetTensorModelParallelGroup().GlobalRanks, model_group = grid.GetModelParallelGroup().GlobalRanks,
            mp_rank = grid.GetModelParallelRank(), first = grid.IsPipelineFirstStage(), last = grid.IsPipelineLastStage(), peers = peers.Order(),
        }));
        Dist.Destroy();
        return 0;
    }
}
