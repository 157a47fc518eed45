using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Native;

/// <summary>
/// Gives the memory ZeRO-3 frees back to the system. glibc serves large allocations with mmap and returns them on free,
/// but after the first large free it raises its mmap threshold (up to 32 MiB), so later tensors of that size come from
/// its heaps, where freed blocks stay mapped. ZeRO-3 gathers and frees full-size weights and gradients unit by unit, so
/// with nothing done the process kept about 230 MB more at its peak (52.6 M-parameter GPT, 2 ranks: 1032 against
/// 806 MiB) than it had live. Lowering the threshold for good costs every mid-size allocation a fresh mapping (30 %
/// of the tokens/s of a small model whose activations are 256 KiB); instead, ZeRO-3 reports what it frees
/// (<see cref="Freed"/>) and, after every <see cref="TrimEvery"/> bytes (16 MiB), glibc's <c>malloc_trim</c> hands the free
/// pages of its heaps back. Only tensors of at least <see cref="MinTrimmedTensor"/> (1 MiB) count: a trim also hands back
/// the pages of every other free block (the last step's activations), which the next step faults in again, so a model
/// of small tensors (whose freed blocks the next allocations of the same sizes reuse) trimmed every second step and
/// spent about 15 % of its time in page faults. On Linux with glibc only; elsewhere nothing happens.
/// </summary>
public static partial class AllocatorTuning
{
    /// <summary>Bytes freed between two trims (16 MiB).</summary>
    public const long TrimEvery = 16L << 20;

    /// <summary>Smallest freed tensor that counts towards a trim (1 MiB).</summary>
    public const long MinTrimmedTensor = 1L << 20;

    private static readonly TrimBudget Budget = new(TrimEvery, Trim, MinTrimmedTensor);
    private static int _unavailable;

    /// <summary>Number of trims so far (for diagnostics).</summary>
    public static long Trims => Interlocked.Read(ref _trims);
    private static long _trims;

    /// <summary>Notes that a tensor of <paramref name="bytes"/> was freed; trims once <see cref="TrimEvery"/> bytes of tensors of at least <see cref="MinTrimmedTensor"/> have been.</summary>
    public static void Freed(long bytes) => Budget.Freed(bytes);

    /// <summary>Hands the free pages of the C heap back to the system now; false where that is not available.</summary>
    public static bool Trim()
    {
        if (!OperatingSystem.IsLinux() || Volatile.Read(ref _unavailable) != 0) return false;
        try
        {
            MallocTrim(0);
            Interlocked.Increment(ref _trims);
            return true;
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) // not glibc
        {
            Volatile.Write(ref _unavailable, 1);
            return false;
        }
    }

    [LibraryImport("libc", EntryPoint = "malloc_trim")]
    private static partial int MallocTrim(nuint pad);
}

/// <summary>
/// Counts freed bytes and runs <paramref name="trim"/> each time another <paramref name="every"/> bytes were freed,
/// counting only frees of at least <paramref name="minimum"/> bytes.
/// </summary>
internal sealed class TrimBudget(long every, Func<bool> trim, long minimum = 1)
{
    private long _pending;

    /// <summary>Adds <paramref name="bytes"/> (ignored below the minimum); returns true when this call trimmed.</summary>
    public bool Freed(long bytes)
    {
        if (bytes <= 0 || bytes < minimum) return false;
        long now = Interlocked.Add(ref _pending, bytes);
        if (now < every || Interlocked.CompareExchange(ref _pending, 0, now) != now) return false;
        return trim();
    }
}
