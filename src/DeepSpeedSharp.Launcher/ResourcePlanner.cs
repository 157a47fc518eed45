namespace DeepSpeedSharp.Launcher;

/// <summary>What the runner decided: which hosts and slots run ranks, and whether a multi-node runner is needed.</summary>
/// <param name="World">The active hosts and slots, in rank order.</param>
/// <param name="MultiNode">True when pdsh/mpirun starts the nodes; false when this machine runs every rank itself.</param>
/// <param name="FromHostfile">True when a hostfile defined the pool; false for the implicit local host.</param>
public sealed record LaunchPlan(WorldInfo World, bool MultiNode, bool FromHostfile);

/// <summary>
/// The resource selection of DeepSpeed's runner (<c>deepspeed/launcher/runner.py</c> main): hostfile pool,
/// then --include/--exclude, then --num_nodes (first N hosts), then --num_gpus (slots [0, N) on every host).
/// Without a hostfile the pool is one host, <c>localhost</c>, with one slot (this is a CPU machine: any
/// --num_gpus or --include slot list is accepted there).
/// </summary>
public static class ResourcePlanner
{
    /// <summary>The implicit host of a run without a hostfile.</summary>
    public const string LocalHost = "localhost";

    /// <summary>Decides the world for <paramref name="o"/> given the hostfile's pool (null when there is no hostfile).</summary>
    /// <exception cref="ArgumentException">Conflicting flags or a selection that leaves no rank.</exception>
    public static LaunchPlan Plan(LaunchOptions o, OrderedDictionary<string, int>? pool)
    {
        if ((o.NumNodes >= 0 || o.NumGpus >= 0) && (o.Include.Length > 0 || o.Exclude.Length > 0))
            throw new ArgumentException("Cannot specify --num_nodes/--num_gpus with --include/--exclude (choose one way of selecting resources).");
        if (o.NumNodes == 0) throw new ArgumentException("--num_nodes 0: at least one node is needed.");
        if (o.NumGpus == 0) throw new ArgumentException("--num_gpus 0: at least one process per node is needed.");

        bool fromHostfile = pool != null;
        pool ??= new OrderedDictionary<string, int> { [LocalHost] = 1 };
        if (!fromHostfile && o.NumNodes > 1)
            throw new ArgumentException($"--num_nodes {o.NumNodes} but no extra nodes are available: there is no hostfile at '{o.Hostfile}' (give one with -H).");

        var world = ResourceFilter.Apply(pool, o.Include, o.Exclude, slotsAreLimits: fromHostfile);
        if (o.NumNodes > 0)
        {
            if (o.NumNodes > world.NodeCount)
                throw new ArgumentException($"--num_nodes {o.NumNodes} but only {world.NodeCount} host(s) are available ({string.Join(", ", world.Hosts)}).");
            world = world.FirstNodes(o.NumNodes);
        }
        if (o.NumGpus > 0) world = world.WithSlotsPerNode(o.NumGpus);
        if (world.WorldSize == 0)
            throw new ArgumentException($"no ranks left to run: the selection (include '{o.Include}', exclude '{o.Exclude}') removed every slot.");

        if (o.NoSsh && (o.NodeRank < 0 || o.NodeRank >= world.NodeCount))
            throw new ArgumentException($"--no_ssh needs --node_rank in [0, {world.NodeCount}) for hosts {string.Join(", ", world.Hosts)}; got {o.NodeRank}.");
        bool multi = (o.ForceMulti || world.NodeCount > 1) && !o.NoSsh;
        return new LaunchPlan(world, multi, fromHostfile);
    }
}
