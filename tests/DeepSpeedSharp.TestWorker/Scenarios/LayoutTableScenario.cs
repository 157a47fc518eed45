using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>One layout × config combination of the agreement table between <c>dss validate-config</c> and <c>Initialize</c>.</summary>
/// <param name="Pipeline">Pipeline stages (a <see cref="PipelineModule"/> when &gt; 1).</param>
/// <param name="Tensor">Tensor-parallel ranks (an mpu when &gt; 1).</param>
/// <param name="ZeroStage">zero_optimization.stage.</param>
/// <param name="StagesKey">The config's pipeline.stages as JSON (null: absent).</param>
/// <param name="Hpz">zero_hpz_partition_size (1: absent).</param>
public sealed record LayoutCase(int Pipeline, int Tensor, int ZeroStage, string? StagesKey, int Hpz)
{
    /// <summary>The config every rank and validate-config read for this case.</summary>
    public string ConfigJson =>
        "{\"train_micro_batch_size_per_gpu\": 1, \"gradient_accumulation_steps\": 2, " +
        "\"optimizer\": {\"type\": \"Adam\", \"params\": {\"lr\": 0.001}}, " +
        $"\"zero_optimization\": {{\"stage\": {ZeroStage}{(Hpz > 1 ? $", \"zero_hpz_partition_size\": {Hpz}" : "")}}}" +
        (StagesKey == null ? "" : $", \"pipeline\": {{\"stages\": {StagesKey}}}") + "}";

    /// <summary>Every case on a world of 4: layouts (pipe × tensor) × ZeRO stages × pipeline.stages keys, and hpZ at stage 3.</summary>
    public static IReadOnlyList<LayoutCase> All()
    {
        var cases = new List<LayoutCase>();
        foreach (var (pp, tp) in new[] { (1, 1), (2, 1), (1, 2), (2, 2) })
            foreach (var key in new[] { null, "\"auto\"", pp.ToString(), (pp == 1 ? 2 : 1).ToString() })
            {
                for (int stage = 0; stage <= 3; stage++) cases.Add(new LayoutCase(pp, tp, stage, key, 1));
                foreach (int hpz in new[] { 2, 3 }) cases.Add(new LayoutCase(pp, tp, 3, key, hpz));
            }
        return cases;
    }
}

/// <summary>
/// On 4 ranks, calls <see cref="DeepSpeed.Initialize"/> for every <see cref="LayoutCase"/> (a <see cref="PipelineModule"/>
/// on a pipe × tensor grid with stages, a plain model with the grid as mpu otherwise) and prints, on rank 0, one line
/// "layout-case {case, verdict}" per case: "ok" or the error Initialize gave. The test compares each with
/// <c>dss validate-config --world-size 4 --pipeline P --tensor T</c> on the same config.
/// </summary>
public sealed class LayoutTableScenario : IScenario
{
    public string Name => "layout-table";

    public int Run(string[] args)
    {
        Dist.Initialize();
        foreach (var group in LayoutCase.All().GroupBy(c => (c.Pipeline, c.Tensor)))
        {
            using var grid = PipelineParallelGrid.Create(group.Key.Pipeline, group.Key.Tensor);
            foreach (var c in group)
            {
                string verdict;
                try
                {
                    torch.manual_seed(1);
                    nn.Module model = c.Pipeline > 1
                        ? new PipelineModule([LayerSpec.Of(() => nn.Linear(4, 4)), LayerSpec.Of(() => nn.Linear(4, 4))], grid, lossFn: (y, t) => (y - t).pow(2).mean())
                        : nn.Linear(4, 4);
                    var result = DeepSpeed.Initialize(model, config: DeepSpeedConfig.FromJson(c.ConfigJson), mpu: c.Pipeline > 1 || c.Tensor == 1 ? null : grid);
                    result.Engine.Dispose();
                    verdict = "ok";
                }
                catch (DeepSpeedConfigException e)
                {
                    verdict = string.Join(" | ", e.Errors);
                }
                if (Dist.Rank == 0) Console.WriteLine("layout-case " + JsonSerializer.Serialize(new { c.Pipeline, c.Tensor, c.ZeroStage, c.StagesKey, c.Hpz, verdict }));
                Dist.World.Barrier();
            }
        }
        Dist.Destroy();
        return 0;
    }
}
