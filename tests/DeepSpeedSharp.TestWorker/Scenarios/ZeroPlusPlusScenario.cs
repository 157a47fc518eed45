using System.Globalization;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Zero.ZeroPlusPlus;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `zero-plus-plus ZERO_JSON`: builds the ZeRO++ groups of the world for the given zero_optimization section (ranks'
/// hosts come from DSS_HOST_ID). With qgZ, reduces every rank's deterministic fp32 input with the quantized
/// reduce-scatter and compares this rank's block with the exact sum computed locally; prints
/// "OK qgz hops=H×L maxerr=E bound=B". A configuration error prints "ERROR message" (one line) and exits 3.
/// Finally runs an all-gather and an all-reduce of 4,000 fp32 elements on the world and prints the comms logger's
/// bytes: "TRAFFIC all_gather SENT CROSS all_reduce SENT CROSS".
/// </summary>
public sealed class ZeroPlusPlusScenario : IScenario
{
    public string Name => "zero-plus-plus";

    public int Run(string[] args)
    {
        torch.set_num_threads(1);
        var world = Dist.Initialize(null, TimeSpan.FromSeconds(60));
        var config = DeepSpeedConfig.FromJson($$"""{ "zero_optimization": {{args[0]}} }""");
        var zero = config.ZeroOptimization;
        ZeroPlusPlusGroups groups;
        using var layout = ParallelLayout.Create(config, world);
        try
        {
            // As Initialize: the layout's rules (hpZ dividing the data-parallel size, its blocks on one host), its groups, then ZeRO++'s.
            layout.Validate();
            layout.CreateGroups();
            groups = ZeroPlusPlusGroups.Create(zero, world, layout);
        }
        catch (DeepSpeedConfigException e)
        {
            Console.WriteLine($"ERROR {e.Message}");
            return 3;
        }
        int rc = 0;
        using (groups)
        {
            if (groups.Secondary is { } s)
                Console.WriteLine($"OK hpz rank {world.Rank} secondary [{string.Join(",", s.GlobalRanks)}]");
            if (groups.Gradients is { } q) rc = CheckGradients(q, world);
        }
        using (NewDisposeScope())
        {
            Dist.Logger.Reset();
            world.AllGather(zeros(4000L * world.Size), ones(4000));
            var gathered = (Dist.Logger.BytesSentByOp["all_gather"], Dist.Logger.BytesSentCrossHostByOp["all_gather"]);
            world.AllReduce(ones(4000));
            Console.WriteLine($"TRAFFIC all_gather {gathered.Item1} {gathered.Item2} all_reduce {Dist.Logger.BytesSentByOp["all_reduce"]} {Dist.Logger.BytesSentCrossHostByOp["all_reduce"]}");
        }
        return rc;
    }

    private static int CheckGradients(QuantizedGradientReduceScatter q, ProcessGroup world)
    {
        const long stride = 1300; // three blocks of 434/433: uneven blocks and padding
        int n = world.Size;
        Tensor Input(int rank)
        {
            using var g = new torch.Generator((ulong)(1000 + rank));
            return torch.randn(n * stride, generator: g).mul_(1 + rank);
        }
        using var scope = NewDisposeScope();
        var input = Input(world.Rank);
        var output = zeros(stride);
        q.Run(output, input.clone(), stride);
        var exact = zeros(stride, ScalarType.Float64);
        double maxAbs = 0;
        for (int r = 0; r < n; r++)
        {
            var x = Input(r);
            exact.add_(x.narrow(0, world.Rank * stride, stride).to(ScalarType.Float64));
            maxAbs = Math.Max(maxAbs, x.abs().max().item<float>());
        }
        double err = (output.to(ScalarType.Float64) - exact).abs().max().item<double>();
        // Each hop rounds every contribution by at most half a quantization step (block max / 254): L contributions of
        // at most maxAbs in the first hop, H partial sums of at most L·maxAbs in the second.
        // Hosts with different rank counts fall back to one hop over the whole group.
        int hosts = Dist.Hosts.Distinct().Count();
        bool uniform = Dist.Hosts.GroupBy(h => h).All(h => h.Count() == n / hosts) && n % hosts == 0;
        int locals = uniform ? n / hosts : n, across = uniform ? hosts : 1;
        double bound = ((locals > 1 ? locals * maxAbs : 0) + (across > 1 ? across * locals * maxAbs : 0)) / 254 * 1.01 + 1e-5;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"OK qgz hops={across}x{locals} rank {world.Rank} maxerr={err:G4} bound={bound:G4} relative={err / maxAbs:G4}"));
        return err <= bound ? 0 : 4;
    }
}
