using System.Text.Json;

namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>Runs a test-worker scenario on real ranks and reads the per-step JSON lines it logged.</summary>
internal static class ScenarioRuns
{
    /// <summary>Runs <paramref name="scenario"/> on <paramref name="ranks"/> ranks with <paramref name="args"/> (space-separated); every rank must exit 0.</summary>
    public static void Run(string scenario, int ranks, string args)
    {
        var results = RankProcesses.Run(scenario, ranks, args.Split(' '), new RankOptions { Timeout = TimeSpan.FromSeconds(600) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
    }

    /// <summary>The <c>loss</c> of every line of a step log.</summary>
    public static List<double> Losses(string file) =>
        File.ReadAllLines(file).Select(l => JsonDocument.Parse(l).RootElement.GetProperty("loss").GetDouble()).ToList();
}
