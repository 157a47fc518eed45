using System.Diagnostics;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>Starts a sample program (e.g. Gpt.dll, Llama.dll) as a user would: alone for one rank, under `dss launch --num_gpus N` otherwise.</summary>
internal static class SampleProcess
{
    /// <summary>Runs <paramref name="sampleDll"/> with <paramref name="sampleArgs"/> on <paramref name="ranks"/> ranks (one thread each) and returns its exit code and output.</summary>
    public static (int ExitCode, string Stdout, string Stderr) Run(string sampleDll, int ranks, string sampleArgs, string workingDirectory)
    {
        var bin = AppContext.BaseDirectory;
        string sample = $"{Path.Combine(bin, sampleDll)} {sampleArgs}";
        string args = ranks == 1 ? sample : $"{Path.Combine(bin, "dss.dll")} launch --num_gpus {ranks} --master_port {RankProcesses.FreePort()} {sample}";
        var psi = new ProcessStartInfo("dotnet", args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        string stdout = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(300_000)) { p.Kill(true); Assert.Fail($"{sampleDll} on {ranks} rank(s) did not finish in 300 s:\n{stdout}"); }
        return (p.ExitCode, stdout, stderr.Result);
    }
}
