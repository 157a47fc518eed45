namespace DeepSpeedSharp.Comm;

/// <summary>
/// Under <c>dss launch</c> (DSS_LAUNCHER_PID set), an exception nobody caught ends the rank with one line,
/// <c>[dss] error: rank R: MESSAGE (unhandled TYPE)</c>, and exit code 1, instead of .NET's abort (exit 134, which the
/// launcher could only report as SIGABRT) with the message buried in a stack trace. The launcher quotes that line as the
/// rank's cause. Exceptions that signal a bug rather than a user's mistake (null reference, index out of range, invalid
/// cast, missing key, not implemented) keep their stack trace below the line. Other launches (torchrun, mpirun
/// alone, tests) keep .NET's behaviour.
/// </summary>
internal static class UnhandledErrors
{
    /// <summary>What the rank's line starts with; the launcher looks for it.</summary>
    public const string Marker = "[dss] error: ";

    /// <summary>The line after it when the cause is a frozen rank (<see cref="DistributedException.FrozenRanks"/>): "[dss] frozen ranks: 1,3".</summary>
    public const string FrozenMarker = "[dss] frozen ranks: ";

    private static int _armed;

    /// <summary>Installs the handler once per process (called by the communication runtime).</summary>
    public static void Arm(LaunchEnvironment env)
    {
        if (env.LauncherPid is null || Interlocked.Exchange(ref _armed, 1) != 0) return;
        int rank = env.Rank;
        AppDomain.CurrentDomain.UnhandledException += (_, e) =>
        {
            var error = Unwrap(e.ExceptionObject as Exception);
            try
            {
                Console.Out.Flush();
                Console.Error.WriteLine(Describe(rank, error));
                if (error is DistributedException { FrozenRanks.Count: > 0 } d)
                    Console.Error.WriteLine(FrozenMarker + string.Join(",", d.FrozenRanks));
                if (error is not null && IsBug(error)) Console.Error.WriteLine(error.ToString());
                Console.Error.Flush();
            }
            finally { Environment.Exit(1); }
        };
    }

    /// <summary>The rank's one line for <paramref name="error"/>.</summary>
    public static string Describe(int rank, Exception? error)
    {
        if (error is null) return $"{Marker}rank {rank}: an unhandled error that is not an exception";
        string message = WithoutRankPrefix(rank, error.Message.ReplaceLineEndings(" ").Trim());
        return $"{Marker}rank {rank}: {message} (unhandled {error.GetType().Name})";
    }

    /// <summary>
    /// <paramref name="message"/> without a leading "rank R: " naming <paramref name="rank"/> (messages of the
    /// communication layer start so), so a line that names the rank itself does not say it twice.
    /// </summary>
    public static string WithoutRankPrefix(int rank, string message)
    {
        string prefix = $"rank {rank}: ";
        while (message.StartsWith(prefix, StringComparison.Ordinal)) message = message[prefix.Length..];
        return message;
    }

    /// <summary>True for exception types that point at a bug in the program rather than at its input.</summary>
    public static bool IsBug(Exception error) => error is NullReferenceException or IndexOutOfRangeException or InvalidCastException
        or KeyNotFoundException or NotImplementedException or AccessViolationException or DivideByZeroException;

    private static Exception? Unwrap(Exception? error)
    {
        while (error is System.Reflection.TargetInvocationException or AggregateException { InnerExceptions.Count: 1 } && error.InnerException is { } inner)
            error = inner;
        return error;
    }
}
