using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Text;
using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>Collective checks so that every rank takes the same branch: all succeed, or all throw.</summary>
internal static class RankAgreement
{
    /// <summary>
    /// Every rank reports whether its part of <paramref name="what"/> succeeded; if any failed, every rank throws
    /// (the failing rank its own exception, the others an error naming the failed ranks).
    /// </summary>
    public static void Agree(ProcessGroup group, Exception? local, string what)
    {
        if (group.Size > 1)
        {
            using var flags = zeros(group.Size, ScalarType.Float64);
            using var mine = tensor(new[] { local == null ? 1.0 : 0.0 }, ScalarType.Float64);
            group.AllGather(flags, mine);
            var ok = flags.data<double>().ToArray();
            var failed = Enumerable.Range(0, group.Size).Where(r => ok[r] == 0).ToList();
            if (local == null && failed.Count > 0)
                throw new InvalidOperationException($"{what} failed on rank(s) {string.Join(", ", failed.Select(group.GetGlobalRank))} (see their error); nothing was changed here");
        }
        if (local != null) ExceptionDispatchInfo.Capture(local).Throw();
    }

    /// <summary>Runs <paramref name="action"/> and agrees on its outcome across the group.</summary>
    public static void Run(ProcessGroup group, string what, Action action)
    {
        Exception? error = null;
        try { action(); }
        catch (Exception e) when (e is not OutOfMemoryException) { error = e; }
        Agree(group, error, what);
    }

    /// <summary>A 62-bit hash of a string, the same on every platform.</summary>
    public static long Hash(string s) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes(s)), 0) & 0x3FFF_FFFF_FFFF_FFFF;

    /// <summary>The hash of <paramref name="value"/> on every rank of the group (index = group rank).</summary>
    public static long[] GatherHashes(ProcessGroup group, string value)
    {
        long h = Hash(value);
        if (group.Size == 1) return new[] { h };
        using var all = zeros(group.Size, ScalarType.Int64);
        using var mine = tensor(new[] { h }, ScalarType.Int64);
        group.AllGather(all, mine);
        return all.data<long>().ToArray();
    }

    /// <summary>Group rank 0's value of <paramref name="value"/> on every rank.</summary>
    public static long BroadcastFromFirst(ProcessGroup group, long value)
    {
        if (group.Size == 1) return value;
        using var t = tensor(new[] { value }, ScalarType.Int64);
        group.Broadcast(t, group.GetGlobalRank(0));
        return t.item<long>();
    }
}
