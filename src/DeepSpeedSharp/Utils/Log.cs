namespace DeepSpeedSharp.Utils;

/// <summary>
/// The library's log: lines go to standard output prefixed with <c>[dss]</c>, by default only on global rank 0
/// (DeepSpeed's <c>log_dist(ranks=[0])</c>). Warnings go to standard error on rank 0.
/// </summary>
public static class Log
{
    /// <summary>This process's global rank (set when distributed initialises).</summary>
    public static int Rank { get; set; }

    /// <summary>Writes an informational line on rank 0.</summary>
    public static void Info(string message)
    {
        if (Rank == 0) Console.Out.WriteLine($"[dss] {message}");
    }

    /// <summary>Writes a warning on rank 0.</summary>
    public static void Warn(string message)
    {
        if (Rank == 0) Console.Error.WriteLine($"[dss] warning: {message}");
    }

    /// <summary>Writes a line on every rank, prefixed with the rank.</summary>
    public static void All(string message) => Console.Out.WriteLine($"[dss rank {Rank}] {message}");
}
