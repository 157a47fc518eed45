using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Utils;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero.ZeroPlusPlus;

/// <summary>
/// The groups ZeRO++ runs its collectives on, derived from the data-parallel group and the host of every rank (the
/// launcher's host id: the hostfile's names, DSS_HOST_ID, or the machine name):
/// <list type="bullet">
/// <item>hpZ: consecutive blocks of <c>zero_hpz_partition_size</c> data-parallel ranks (DeepSpeed's layout), each on one
/// host: the job's <c>ParallelLayout</c> checks and creates this secondary group, and owns it;</item>
/// <item>qgZ: the data-parallel ranks of each host (intra) and, for each position on a host, one rank per host (inter).</item>
/// </list>
/// Building qgZ's is collective over the world: every rank learns every data-parallel group, so that all ranks create
/// the same groups in the same order.
/// </summary>
internal sealed class ZeroPlusPlusGroups : IDisposable
{
    private ZeroPlusPlusGroups(ProcessGroup? secondary, QuantizedGradientReduceScatter? gradients, bool quantizeWeights, List<ProcessGroup> owned)
    {
        Secondary = secondary;
        Gradients = gradients;
        QuantizeWeights = quantizeWeights;
        this.owned = owned;
    }

    private readonly List<ProcessGroup> owned;

    /// <summary>hpZ's secondary group (this rank's block of the data-parallel group), or null when hpZ is off.</summary>
    public ProcessGroup? Secondary { get; }

    /// <summary>qgZ's hierarchical quantized reduce-scatter, or null when qgZ is off.</summary>
    public QuantizedGradientReduceScatter? Gradients { get; }

    /// <summary>qwZ: the forward all-gather of primary partitions is int8-quantized.</summary>
    public bool QuantizeWeights { get; }

    /// <summary>True when any ZeRO++ feature is on.</summary>
    public bool Any => Secondary is not null || Gradients is not null || QuantizeWeights;

    /// <summary>No ZeRO++.</summary>
    public static ZeroPlusPlusGroups None { get; } = new(null, null, false, new());

    /// <summary>Builds what <paramref name="zero"/> asks for over the data-parallel group <paramref name="dp"/>, with hpZ's
    /// secondary group and every data-parallel group from the job's <paramref name="layout"/> (without one, qgZ learns the
    /// groups itself and hpZ is refused).</summary>
    public static ZeroPlusPlusGroups Create(ZeroConfig zero, ProcessGroup dp, ParallelLayout? layout)
    {
        int hpz = zero.ZeroHpzPartitionSize;
        bool qgz = zero.ZeroQuantizedGradients, qwz = zero.ZeroQuantizedWeights;
        if (hpz <= 1 && !qgz && !qwz) return None;
        if (dp.Size == 1)
        {
            Log.Info("ZeRO++: the data-parallel group has one rank, so there is nothing to partition hierarchically or to send quantized");
            return None;
        }
        var hpzGroup = layout?.HpzGroup;
        if (hpz > 1 && hpzGroup is not { Size: > 1 })
            throw new InvalidOperationException($"ZeRO++ hpZ (zero_hpz_partition_size = {hpz}) needs the layout's secondary group (ParallelLayout.HpzGroup)");
        var secondary = hpz > 1 ? hpzGroup : null;
        var owned = new List<ProcessGroup>();
        QuantizedGradientReduceScatter? gradients = null;
        if (qgz) gradients = HierarchicalGradients(layout?.DataParallelGroups ?? DataParallelMembership.All(dp), Dist.Hosts, dp, owned);
        var parts = new List<string>();
        if (secondary is not null) parts.Add($"hpZ secondary groups of {hpz} ranks on one host");
        if (qwz) parts.Add("int8 weight all-gather (qwZ)");
        if (gradients is not null) parts.Add("int8 hierarchical gradient reduce-scatter (qgZ)");
        Log.Info("ZeRO++: " + string.Join("; ", parts));
        return new ZeroPlusPlusGroups(secondary, gradients, qwz, owned);
    }

    private static QuantizedGradientReduceScatter HierarchicalGradients(IReadOnlyList<int[]> groups, IReadOnlyList<string> hosts, ProcessGroup dp, List<ProcessGroup> owned)
    {
        // Per data-parallel group: its ranks per host (ascending, as groups order their members), or one "host" holding
        // them all when hosts have different numbers of ranks (then the reduce-scatter is one quantized hop).
        List<int[]> ByHost(int[] g)
        {
            var byHost = g.GroupBy(r => hosts[r]).Select(h => h.Order().ToArray()).ToList();
            return byHost.All(h => h.Length == byHost[0].Length) ? byHost : new List<int[]> { g.Order().ToArray() };
        }
        var layouts = groups.Select(ByHost).ToList();
        var mineLayout = ByHost(dp.GlobalRanks.ToArray());
        if (mineLayout.Count == 1 && dp.GlobalRanks.Select(r => hosts[r]).Distinct().Count() > 1)
            Log.Warn("ZeRO++ qgZ: the hosts hold different numbers of data-parallel ranks, so gradients are reduced in one quantized hop over the whole group");
        var intra = Dist.NewGroups(layouts.SelectMany(l => l).Select(h => (IReadOnlyList<int>)h).ToList());
        owned.Add(intra);
        var interLists = layouts.SelectMany(l => Enumerable.Range(0, l[0].Length).Select(j => (IReadOnlyList<int>)l.Select(h => h[j]).Order().ToArray())).ToList();
        var inter = Dist.NewGroups(interLists);
        owned.Add(inter);
        // ownersByLocal[j][h]: the data-parallel rank of position h of the inter group of local index j.
        int locals = mineLayout[0].Length;
        var owners = new int[locals][];
        for (int j = 0; j < locals; j++)
            owners[j] = mineLayout.Select(h => h[j]).Order().Select(dp.GetGroupRank).ToArray();
        return new QuantizedGradientReduceScatter(intra, inter, owners);
    }

    public void Dispose()
    {
        foreach (var g in owned) g.Dispose();
    }
}
