using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Zero;

/// <summary>What <see cref="ZeroMemoryEstimator"/> needs to know about a training setup.</summary>
/// <param name="Parameters">Trainable parameters (elements).</param>
/// <param name="LargestParameter">Elements of the largest parameter tensor (a reduction bucket holds at least one).</param>
/// <param name="Ranks">Data-parallel ranks per node.</param>
/// <param name="Nodes">Nodes.</param>
/// <param name="Stage">ZeRO stage 0–3.</param>
/// <param name="ModelBytes">Bytes per element of the model's weights: 4 (fp32) or 2 (bf16/fp16).</param>
/// <param name="MasterBytes">Bytes per element of the master weights and gradient partitions: 4, or 2 with 16-bit masters.</param>
/// <param name="MomentBytes">Bytes per element of each Adam moment: 4, or 2 with <c>bf16_optimizer_states</c>.</param>
/// <param name="OffloadOptimizer"><c>offload_optimizer.device: "cpu"</c>.</param>
/// <param name="OffloadParam"><c>offload_param.device: "cpu"</c> (stage 3).</param>
/// <param name="Fp32GradAccumulation"><c>data_types.grad_accum_dtype: "fp32"</c> with a 16-bit model (stages 0–1).</param>
/// <param name="ReduceBucketSize"><c>reduce_bucket_size</c> (elements).</param>
/// <param name="HpzPartitionSize"><c>zero_hpz_partition_size</c> (stage 3): ranks sharing hpZ's secondary partition (1 = off).</param>
public sealed record ZeroMemorySetup(long Parameters, long LargestParameter, int Ranks, int Nodes, int Stage, int ModelBytes = 4,
    int MasterBytes = 4, int MomentBytes = 4, bool OffloadOptimizer = false, bool OffloadParam = false,
    bool Fp32GradAccumulation = false, long ReduceBucketSize = 500_000_000, int HpzPartitionSize = 1)
{
    /// <summary>The setup a config describes for a model of <paramref name="parameters"/> elements.</summary>
    public static ZeroMemorySetup FromConfig(DeepSpeedConfig config, long parameters, long largestParameter, int ranks, int nodes = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        var z = config.ZeroOptimization;
        var precision = Precision.PrecisionPolicy.From(config);
        int Bytes(TorchSharp.torch.ScalarType t) => t == TorchSharp.torch.ScalarType.Float32 ? 4 : 2;
        return new ZeroMemorySetup(parameters, largestParameter, ranks, nodes, z.Stage, Bytes(precision.ModelDType), Bytes(precision.MasterDType),
            precision.LowPrecisionOptimizerStates ? 2 : 4, z.OffloadOptimizer.Enabled, z.Stage == 3 && z.OffloadParam.Enabled,
            precision.Fp32GradAccumulation, z.ReduceBucketSize, z.Stage == 3 ? z.ZeroHpzPartitionSize : 1);
    }

    /// <summary>
    /// The setup a config describes for <paramref name="model"/>: counts its trainable parameters (those with
    /// <c>requires_grad</c>) and the elements of the largest of them, then defers to
    /// <see cref="FromConfig(DeepSpeedConfig, long, long, int, int)"/>. Only shapes are read, so a model built on the
    /// <c>meta</c> device (no storage) gives the same setup as the real one.
    /// </summary>
    /// <param name="config">The DeepSpeed config (precision, stage, offload, bucket sizes).</param>
    /// <param name="model">The model to count; its parameters are not changed.</param>
    /// <param name="ranks">Data-parallel ranks per node.</param>
    /// <param name="nodes">Nodes.</param>
    /// <exception cref="ArgumentException">The model has no trainable parameters.</exception>
    public static ZeroMemorySetup FromModel(DeepSpeedConfig config, TorchSharp.torch.nn.Module model, int ranks, int nodes = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        var (parameters, largest) = CountTrainable(model);
        if (parameters == 0) throw new ArgumentException($"the model {model.GetType().Name} has no trainable parameters (requires_grad)", nameof(model));
        return FromConfig(config, parameters, largest, ranks, nodes);
    }

    /// <summary>The trainable parameters' elements in total and in the largest tensor (each parameter once, even if shared).</summary>
    private static (long Parameters, long LargestParameter) CountTrainable(TorchSharp.torch.nn.Module model)
    {
        ArgumentNullException.ThrowIfNull(model);
        long total = 0, largest = 0;
        var seen = new HashSet<IntPtr>();
        foreach (var p in model.parameters())
        {
            if (!p.requires_grad || !seen.Add(p.Handle)) continue;
            long n = p.numel();
            total += n;
            largest = Math.Max(largest, n);
        }
        return (total, largest);
    }
}

/// <summary>Bytes one rank holds between steps, split by kind and by where they live.</summary>
/// <param name="Parameters">Model weights plus master partitions.</param>
/// <param name="Gradients">Gradient buffers kept between steps.</param>
/// <param name="OptimizerState">Adam moments.</param>
/// <param name="OnHost">The part of the total that offloading places in host memory (on a CPU-only machine everything is host memory).</param>
/// <param name="ReduceBuffers">Of <paramref name="Gradients"/>: the reduction buffers that <c>reduce_bucket_size</c> sizes (stage 0's
/// bucket, ZeRO-3's reduce-scatter buffers; 0 at stages 1–2 and with a 16-bit model at stage 0).</param>
public sealed record ZeroMemoryEstimate(long Parameters, long Gradients, long OptimizerState, long OnHost, long ReduceBuffers = 0)
{
    /// <summary>The three kinds together.</summary>
    public long Total => Parameters + Gradients + OptimizerState;

    /// <summary>What stays on the compute device.</summary>
    public long OnDevice => Total - OnHost;
}

/// <summary>
/// The model-state bytes DeepSpeedSharp's strategies hold per rank between steps (what <c>ModelStateBytes()</c>
/// reports), from the parameter count alone — DeepSpeed's <c>estimate_zero2/3_model_states_mem_needs</c> for this
/// engine: stage 0 keeps full weights, gradients and a reduction bucket; ZeRO-1/2 a flat 16-bit or fp32 copy plus
/// 1/N of master, gradient and moments; ZeRO-3 1/N of everything, plus the reduce-scatter's buffers and hpZ's secondary partition (persistent small
/// parameters and activations are not counted). Per host multiply by the ranks per node.
/// </summary>
public static class ZeroMemoryEstimator
{
    /// <summary>The estimate for one rank.</summary>
    public static ZeroMemoryEstimate PerRank(ZeroMemorySetup s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.Parameters < 1 || s.Ranks < 1 || s.Nodes < 1 || s.Stage is < 0 or > 3)
            throw new ArgumentException("need parameters ≥ 1, ranks ≥ 1, nodes ≥ 1 and a stage of 0–3");
        long world = (long)s.Ranks * s.Nodes;
        long p = s.Parameters;
        long part = (p + world - 1) / world;
        long moments = 2L * s.MomentBytes;
        if (s.Stage == 0 && s.ModelBytes == 4)
        {
            // Plain data parallelism: the model's own weights and gradients, one reduction bucket, full Adam state.
            long bucket = 4 * Math.Min(Math.Max(s.ReduceBucketSize, s.LargestParameter), p);
            return new ZeroMemoryEstimate(4 * p, 4 * p + bucket, moments * p, 0, bucket);
        }
        if (s.Stage < 3)
        {
            // A flat model-dtype copy; master, gradient partition and moments over 1/N (the whole space at stage 0).
            long owned = s.Stage == 0 ? p : part;
            long flat = s.ModelBytes * (s.Stage == 0 ? p : part * world);
            long accum = s.Fp32GradAccumulation && s.Stage < 2 && s.ModelBytes == 2 ? 4 * (s.Stage == 0 ? p : part * world) : 0;
            long master = s.MasterBytes * owned, grad = s.MasterBytes * owned, optimizer = moments * owned;
            long host = s.OffloadOptimizer ? master + grad + optimizer : 0;
            return new ZeroMemoryEstimate(flat + master, grad + accum, optimizer, host);
        }
        // ZeRO-3: the master partition (which the gathered weights are built from), its gradient and moments; with hpZ,
        // a secondary partition of the model-dtype weights over the host's group (on the device: backward gathers from it).
        // The gradient side adds the reduce-scatter's buckets (Zero3UnitReducer.Layout): one slot for the whole model
        // when it fits in reduce_bucket_size, else two of half the bucket, each at least the largest unit; a slot packs
        // fp32 gradients for every rank and receives this rank's part. The largest parameter stands in for the largest
        // unit (a unit of several parameters packs more).
        long largestPart = (Math.Min(Math.Max(1, s.LargestParameter), p) + world - 1) / world;
        var (columns, slots) = Zero3UnitReducer.Layout(part, largestPart, s.ReduceBucketSize, (int)world);
        long reduceBuffers = slots * 4 * columns * (world + 1);
        long m3 = s.MasterBytes * part, g3 = s.MasterBytes * part + reduceBuffers, o3 = moments * part;
        long secondary = s.HpzPartitionSize > 1 ? s.ModelBytes * ((p + s.HpzPartitionSize - 1) / s.HpzPartitionSize) : 0;
        long onHost = s.OffloadOptimizer || s.OffloadParam ? m3 + g3 - reduceBuffers + o3 : 0; // the buffers stay with the compute
        return new ZeroMemoryEstimate(m3 + secondary, g3, o3, onHost, reduceBuffers);
    }
}
