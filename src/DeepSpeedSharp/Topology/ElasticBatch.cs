using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Topology;

/// <summary>What <see cref="ElasticBatch.Compute"/> chose.</summary>
/// <param name="TrainBatchSize">The global batch, the same for every valid world size.</param>
/// <param name="ValidWorldSizes">The data-parallel world sizes it can run at.</param>
/// <param name="MicroBatchSize">The micro batch at the current world size (the largest of the config's that divides its share).</param>
public sealed record ElasticBatchResult(int TrainBatchSize, IReadOnlyList<int> ValidWorldSizes, int MicroBatchSize)
{
    /// <summary>Gradient accumulation at <paramref name="dataParallelWorldSize"/>: batch / (micro × world).</summary>
    public int GradientAccumulationSteps(int dataParallelWorldSize) => TrainBatchSize / (MicroBatchSize * dataParallelWorldSize);
}

/// <summary>
/// DeepSpeed's <c>compute_elastic_config</c> (<c>deepspeed/elasticity/elasticity.py</c>), versions 0.1 and 0.2, to the
/// same numbers: candidate batch sizes are each micro batch and their least common multiple, scaled by the largest
/// highly composite number that keeps them within <c>max_train_batch_size</c>; the candidate with the most valid world
/// sizes in [min_gpus, max_gpus] wins (ties: the larger batch, or the smaller with <c>prefer_larger_batch: false</c>).
/// Version 0.2 plans by whole hosts (<c>num_gpus_per_node</c>, <c>model_parallel_size</c>) and, at a world size outside
/// the plan, falls back to the largest batch its micro batches allow there. Errors name the key.
/// </summary>
public static class ElasticBatch
{
    // The thirty-eight smallest highly composite numbers (DeepSpeed's HCN_LIST): enough for batches up to 720K.
    private static readonly int[] Hcn =
    [
        1, 2, 4, 6, 12, 24, 36, 48, 60, 120, 180, 240, 360, 720, 840, 1260, 1680, 2520, 5040, 7560, 10080, 15120, 20160,
        25200, 27720, 45360, 50400, 55440, 83160, 110880, 166320, 221760, 277200, 332640, 498960, 554400, 665280, 720720,
    ];

    /// <summary>The elastic batch for a data-parallel world of <paramref name="worldSize"/> ranks.</summary>
    public static ElasticBatchResult Compute(ElasticityConfig c, int worldSize)
    {
        var micros = Check(c);
        int max = c.MaxTrainBatchSize!.Value;
        int final;
        List<int> valid;
        if (c.Version == 0.1)
        {
            if (c.ModelParallelSize > 1)
                throw new DeepSpeedConfigException($"elasticity.model_parallel_size: version 0.1 does not support model parallelism (got {c.ModelParallelSize}); use version 0.2");
            (final, valid) = V01(micros, max, c.MinGpus, c.MaxGpus, c.PreferLargerBatch);
        }
        else (final, valid) = V02(micros, max, worldSize, c);
        if (!valid.Contains(worldSize))
            throw new DeepSpeedConfigException($"elasticity: data-parallel world size {worldSize} is not one the elastic batch size {final} can run at; " +
                                               $"valid world sizes: {string.Join(", ", valid)}");
        int? micro = micros.Distinct().OrderDescending().Cast<int?>().FirstOrDefault(m => final / worldSize % m == 0);
        return new ElasticBatchResult(final, valid, micro ?? throw new DeepSpeedConfigException(
            $"elasticity.micro_batch_sizes: none of [{string.Join(", ", micros)}] divides the batch per rank {final / worldSize} (batch {final}, world size {worldSize})"));
    }

    private static int[] Check(ElasticityConfig c)
    {
        if (c.MaxTrainBatchSize is null) throw new DeepSpeedConfigException("elasticity.max_train_batch_size is missing: an enabled elasticity section needs it");
        if (c.MicroBatchSizes is not { Count: > 0 } m) throw new DeepSpeedConfigException("elasticity.micro_batch_sizes is missing: an enabled elasticity section needs a list of micro-batch sizes");
        if (c.Version is not (0.1 or 0.2)) throw new DeepSpeedConfigException($"elasticity.version: {c.Version} is not a version this runtime has; use 0.1 or 0.2");
        if (c.MinGpus > c.MaxGpus) throw new DeepSpeedConfigException($"elasticity.min_gpus ({c.MinGpus}) is larger than elasticity.max_gpus ({c.MaxGpus})");
        if (m.Any(x => x > c.MaxTrainBatchSize))
            throw new DeepSpeedConfigException($"elasticity.micro_batch_sizes: every micro batch must be at most max_train_batch_size {c.MaxTrainBatchSize}; got [{string.Join(", ", m)}]");
        return [.. m];
    }

    internal static (int Batch, List<int> Valid) V01(int[] micros, int max, int minGpus, int maxGpus, bool preferLarger)
    {
        minGpus = minGpus == 0 ? 1 : minGpus;
        maxGpus = maxGpus == 0 ? max / micros.Min() : maxGpus;
        long lcm = micros.Aggregate(1L, (a, b) => a / Gcd(a, b) * b);
        var candidates = new HashSet<int>();
        foreach (long b in micros.Select(x => (long)x).Append(lcm))
        {
            if (b > max) continue; // scaling only grows it
            if (b == max) { candidates.Add((int)b); continue; }
            long value = max / b;
            int index = Array.FindIndex(Hcn, h => h > value);
            candidates.Add((int)(Hcn[(index <= 0 ? Hcn.Length : index) - 1] * b));
        }
        int best = micros.Min();
        var bestValid = new List<int>();
        int bestCount = 0;
        foreach (int batch in candidates)
        {
            var v = ValidGpus(batch, micros, minGpus, maxGpus);
            if (v.Count > bestCount || (v.Count == bestCount && (preferLarger ? batch > best : batch < best)))
            {
                bestCount = v.Count;
                bestValid = v;
                best = batch;
            }
        }
        return (best, bestValid);
    }

    private static List<int> ValidGpus(int batch, int[] micros, int min, int max)
    {
        var valid = new SortedSet<int>();
        foreach (int m in micros)
        {
            if (batch % m != 0) continue;
            int most = batch / m;
            if (min <= most && most <= max) valid.Add(most);
            for (int i = 1; i <= most / 2; i++)
            {
                if (i > max) break;
                if (i < min) continue;
                if (most % i == 0) valid.Add(i);
            }
        }
        return [.. valid];
    }

    private static (int Batch, List<int> Valid) V02(int[] micros, int max, int worldSize, ElasticityConfig c)
    {
        if (c.NumGpusPerNode % c.ModelParallelSize != 0)
            throw new DeepSpeedConfigException($"elasticity.num_gpus_per_node ({c.NumGpusPerNode}) must be divisible by elasticity.model_parallel_size ({c.ModelParallelSize})");
        int perNode = c.NumGpusPerNode / c.ModelParallelSize;
        var (batch, hosts) = V01(micros, max / perNode, c.MinGpus / c.NumGpusPerNode, c.MaxGpus / c.NumGpusPerNode, c.PreferLargerBatch);
        batch *= perNode;
        var valid = hosts.Select(h => h * perNode).ToList();
        if (valid.Contains(worldSize)) return (batch, valid);
        // A world size outside the plan: the largest (or smallest) batch each micro batch allows at this size.
        var sizes = micros.Select(m => max / (m * worldSize) * m * worldSize).ToList();
        return (c.PreferLargerBatch ? sizes.Max() : sizes.Min(), [worldSize]);
    }

    private static long Gcd(long a, long b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>
    /// DeepSpeed's elastic override of the batch keys at data-parallel size <paramref name="world"/>: batch keys in the
    /// config (even "auto") are an error unless <c>elasticity.ignore_non_elastic_batch_info</c>, as in DeepSpeed; values the
    /// program passes must agree with the elastic ones.
    /// </summary>
    public static BatchSizes Resolve(DeepSpeedConfig config, int world, int? trainBatchSize, int? microBatchPerGpu, int? gradientAccumulationSteps)
    {
        var present = new[] { ("train_batch_size", config.TrainBatchSize), ("train_micro_batch_size_per_gpu", config.TrainMicroBatchSizePerGpu), ("gradient_accumulation_steps", config.GradientAccumulationSteps) }
            .Where(k => k.Item2 != null || config.AutoKeys.Contains(k.Item1)).Select(k => k.Item1).ToList();
        if (present.Count > 0 && !config.Elasticity.IgnoreNonElasticBatchInfo)
            throw new DeepSpeedConfigException($"{string.Join(", ", present)}: elasticity is enabled and sets the batch sizes, so these keys would be ignored; " +
                                               "remove them, or set elasticity.ignore_non_elastic_batch_info to true");
        var e = Compute(config.Elasticity, world);
        var b = new BatchSizes(e.TrainBatchSize, e.MicroBatchSize, e.GradientAccumulationSteps(world));
        foreach (var (key, passed, elastic) in new[] { ("train_batch_size", trainBatchSize, b.TrainBatchSize), ("train_micro_batch_size_per_gpu", microBatchPerGpu, b.MicroBatchPerGpu), ("gradient_accumulation_steps", gradientAccumulationSteps, b.GradientAccumulationSteps) })
            if (passed is { } v && v != elastic)
                throw new DeepSpeedConfigException($"{key} passed by the program is {v}, but elasticity sets it to {elastic} at data-parallel world size {world}; pass nothing or the elastic value");
        return b;
    }
}
