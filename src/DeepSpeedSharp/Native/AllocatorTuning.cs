using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Native;

/// <summary>
/// Keeps glibc from holding on to the memory training frees. glibc serves large allocations with mmap and returns them
/// on free, but after the first large free it raises its mmap threshold (up to 32 MiB) so that later tensors of that
/// size come from its heaps, where freed blocks stay mapped. ZeRO-3 gathers and frees full-size weights and gradients
/// unit by unit, so with glibc's defaults the process kept about 240 MB more at its peak (52.6 M-parameter GPT, 2 ranks:
/// 1032 against 795 MiB) than it had live. Fixing the threshold at 256 KiB disables that adjustment: tensors of 256 KiB
/// and more are mapped and unmapped with their lifetimes.
/// Applied once per process by <see cref="DeepSpeed.Initialize"/>, <see cref="DeepSpeed.InitDistributed"/> and
/// <see cref="Zero.ZeroInit"/>'s constructor, on Linux
/// only, and not when the user set glibc's own <c>MALLOC_MMAP_THRESHOLD_</c> (their choice wins).
/// </summary>
public static partial class AllocatorTuning
{
    /// <summary>The mmap threshold set (bytes).</summary>
    public const int MmapThreshold = 256 * 1024;

    private const int MMmapThreshold = -3; // glibc's M_MMAP_THRESHOLD
    private static int _applied;

    /// <summary>True when this process's allocator was tuned (Linux, glibc, no user setting).</summary>
    public static bool Applied => Volatile.Read(ref _applied) == 1;

    /// <summary>Tunes the allocator once; returns whether it is tuned.</summary>
    public static bool Apply()
    {
        if (Volatile.Read(ref _applied) != 0) return Applied;
        bool ok = false;
        if (OperatingSystem.IsLinux() && Environment.GetEnvironmentVariable("MALLOC_MMAP_THRESHOLD_") is null)
        {
            try { ok = MallOpt(MMmapThreshold, MmapThreshold) == 1; }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { } // not glibc
        }
        Interlocked.CompareExchange(ref _applied, ok ? 1 : -1, 0);
        return Applied;
    }

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int MallOpt(int param, int value);
}
