using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>
/// A monotonically increasing 64-bit counter in shared memory with a sleeper count next to it, so a waiting
/// process can block in the kernel (a shared futex on the counter's low 32 bits) instead of spinning, and a poster
/// only makes the wake-up system call when someone sleeps. Layout: counter at +0 (8 bytes), sleepers at +8.
/// On platforms without futex (not Linux x64/arm64) waits fall back to short sleeps.
/// </summary>
internal static unsafe partial class SharedCounter
{
    private const int FutexWait = 0, FutexWake = 1; // shared (not FUTEX_PRIVATE_FLAG): the word is in a shared mapping
    private static readonly long SysFutex = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 when OperatingSystem.IsLinux() => 202,
        Architecture.Arm64 when OperatingSystem.IsLinux() => 98,
        _ => -1,
    };

    [StructLayout(LayoutKind.Sequential)]
    private struct Timespec { public long Sec; public long Nsec; }

    [LibraryImport("libc", EntryPoint = "syscall", SetLastError = true)]
    private static partial long Syscall(long number, void* addr, int op, int val, Timespec* timeout, void* addr2, int val3);

    /// <summary>Publishes <paramref name="value"/> (full fence) and wakes any process sleeping on the counter.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Post(byte* counter, long value)
    {
        Interlocked.Exchange(ref *(long*)counter, value);
        if (Volatile.Read(ref *(int*)(counter + 8)) != 0 && SysFutex > 0)
            Syscall(SysFutex, counter, FutexWake, int.MaxValue, null, null, 0);
    }

    /// <summary>Current value.</summary>
    public static long Read(byte* counter) => Volatile.Read(ref *(long*)counter);

    /// <summary>
    /// Sleeps until the counter changes from <paramref name="seen"/> or <paramref name="maxMicros"/> pass
    /// (spurious returns are fine: the caller re-checks).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Sleep(byte* counter, long seen, int maxMicros)
    {
        if (SysFutex < 0) { Thread.Sleep(1); return; }
        int* sleepers = (int*)(counter + 8);
        Interlocked.Increment(ref *sleepers); // full fence: the poster's Exchange and this increment are ordered
        try
        {
            if (Read(counter) != seen) return;
            var ts = new Timespec { Sec = maxMicros / 1_000_000, Nsec = maxMicros % 1_000_000 * 1000L };
            Syscall(SysFutex, counter, FutexWait, (int)seen, &ts, null, 0);
        }
        finally { Interlocked.Decrement(ref *sleepers); }
    }
}
