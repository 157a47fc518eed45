using DeepSpeedSharp.Comm;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// DeepSpeed's <c>zero.Init</c> for TorchSharp: builds a model already partitioned, so its full size never sits on
/// one rank. TorchSharp gives no way to intercept parameter allocation, so the model calls
/// <see cref="Partition{T}"/> on each submodule right after constructing (and initialising) it: every rank builds the
/// same submodule from the same seed, keeps only its slice of each parameter and frees the rest, so at most one
/// submodule is whole at a time. <see cref="DeepSpeed.Initialize"/> with ZeRO stage 3 then uses those slices.
/// </summary>
public sealed class ZeroInit
{
    private static readonly Dictionary<IntPtr, PrePartitioned> Registry = new();
    private readonly int rank, size;

    /// <summary>Partitions over <paramref name="dataParallelGroup"/> (the world when null; <c>Dist</c> is initialised if needed).</summary>
    public ZeroInit(ProcessGroup? dataParallelGroup = null)
    {
        var group = dataParallelGroup ?? (Dist.IsInitialized ? Dist.World : Dist.Initialize());
        (rank, size) = (group.Rank, group.Size);
    }

    /// <summary>Partitions as rank <paramref name="rank"/> of <paramref name="size"/> (partitioning never communicates).</summary>
    internal ZeroInit(int rank, int size) => (this.rank, this.size) = (rank, size);

    /// <summary>Keeps this rank's slice of every parameter of <paramref name="module"/> and frees the full values.</summary>
    public T Partition<T>(T module) where T : nn.Module
    {
        using var noGrad = no_grad();
        foreach (var p in module.parameters())
        {
            lock (Registry)
            {
                if (Registry.ContainsKey(p.Handle)) continue;
                long numel = p.numel(), partition = (numel + size - 1) / size, start = rank * partition;
                var slice = zeros(partition, ScalarType.Float32, p.device).DetachFromDisposeScope();
                long real = Math.Max(0, Math.Min(partition, numel - start));
                if (real > 0)
                    using (var detached = p.detach()) // disposed too: a stray handle would keep the full value alive
                    using (var flat = detached.reshape(-1))
                    using (var src = flat.narrow(0, start, real))
                    using (var dst = slice.narrow(0, 0, real))
                        dst.copy_(src);
                Registry[p.Handle] = new PrePartitioned(p.shape, numel, p.dtype, slice, size, rank);
                using var none = empty(0, p.dtype, p.device);
                p.set_(none);
                Native.AllocatorTuning.Freed(numel * p.dtype.ElementSize());
            }
        }
        return module;
    }

    /// <summary>Takes the slices of a model's parameters partitioned by <see cref="Partition{T}"/>, by parameter name.</summary>
    internal static Dictionary<string, PrePartitioned> TakeAll(nn.Module model) =>
        model.named_parameters().Select(p => (p.name, Slice: Take(p.parameter))).Where(p => p.Slice is not null)
            .ToDictionary(p => p.name, p => p.Slice!);

    /// <summary>The slice recorded for a parameter partitioned by <see cref="Partition{T}"/>, removing it from the registry.</summary>
    internal static PrePartitioned? Take(Parameter p)
    {
        lock (Registry)
        {
            if (!Registry.Remove(p.Handle, out var value)) return null;
            return value;
        }
    }

    /// <summary>The slice recorded for a parameter partitioned by <see cref="Partition{T}"/> (left in the registry), or null.</summary>
    internal static PrePartitioned? Find(Parameter p)
    {
        lock (Registry) return Registry.TryGetValue(p.Handle, out var value) ? value : null;
    }

    /// <summary>True when the parameter was partitioned at construction and not yet taken by an engine.</summary>
    public static bool IsPartitioned(Parameter p)
    {
        lock (Registry) return Registry.ContainsKey(p.Handle);
    }

    internal sealed record PrePartitioned(long[] Shape, long Numel, ScalarType DType, Tensor Slice, int WorldSize, int Rank);
}
