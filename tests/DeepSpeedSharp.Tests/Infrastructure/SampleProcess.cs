using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>Starts a sample program (e.g. Gpt.dll, Llama.dll) as a user would: alone for one rank, under `dss launch` otherwise.</summary>
internal static class SampleProcess
{
    /// <summary>Runs <paramref name="sampleDll"/> with <paramref name="sampleArgs"/> on <paramref name="ranks"/> ranks (one thread each) and returns its exit code and output.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string sampleDll, int ranks, string sampleArgs, string workingDirectory,
        IReadOnlyDictionary<string, string?>? env = null) =>
        ranks == 1
            ? Start($"{Path.Combine(AppContext.BaseDirectory, sampleDll)} {sampleArgs}", workingDirectory, env, sampleDll)
            : Launch($"--num_gpus {ranks} --master_port {RankProcesses.FreePort()}", sampleDll, sampleArgs, workingDirectory, env);

    /// <summary>Runs `dss launch <paramref name="launchArgs"/> SAMPLE <paramref name="sampleArgs"/>` (e.g. a hostfile and pdsh's exec module).</summary>
    public static (int ExitCode, string Stdout, string Stderr) Launch(string launchArgs, string sampleDll, string sampleArgs, string workingDirectory,
        IReadOnlyDictionary<string, string?>? env = null)
    {
        var bin = AppContext.BaseDirectory;
        return Start($"{Path.Combine(bin, "dss.dll")} launch {launchArgs} {Path.Combine(bin, sampleDll)} {sampleArgs}", workingDirectory, env, sampleDll);
    }

    private static (int ExitCode, string Stdout, string Stderr) Start(string args, string workingDirectory, IReadOnlyDictionary<string, string?>? env, string what)
    {
        var run = ChildProcess.Dotnet(ShellWords.Split(args), workingDirectory, env, TimeSpan.FromSeconds(300));
        if (run.TimedOut) Assert.Fail($"{what} did not finish in 300 s:\n{run.Stdout}");
        return (run.ExitCode, run.Stdout, run.Stderr);
    }
}
