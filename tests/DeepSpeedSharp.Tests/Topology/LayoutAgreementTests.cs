using System.Text.Json;
using System.Text.RegularExpressions;
using DeepSpeedSharp.Cli.Commands;
using DeepSpeedSharp.TestWorker.Scenarios;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Topology;

/// <summary>
/// <c>dss validate-config</c> and <c>DeepSpeed.Initialize</c> decide every layout the same way: 4 real ranks call
/// Initialize for each layout (pipe × tensor of 1×1, 2×1, 1×2, 2×2) × ZeRO stage × <c>pipeline.stages</c> key (absent,
/// "auto", the right number, a wrong one) and hpZ size; validate-config checks the same config with
/// <c>--world-size 4 --pipeline P --tensor T</c>. Both accept, or both refuse with the same rule's message (only the
/// phrase naming where the stage count came from differs: the PipelineModule, or the flag).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class LayoutAgreementTests
{
    [Fact]
    public void ValidateConfigAndInitializeAgreeOnEveryLayout()
    {
        var results = RankProcesses.Run("layout-table", 4, [], new RankOptions { Timeout = TimeSpan.FromSeconds(300) });
        foreach (var r in results) Assert.True(r.ExitCode == 0, r.ToString());
        var lines = results[0].Stdout.Split('\n').Where(l => l.StartsWith("layout-case ", StringComparison.Ordinal))
            .Select(l => JsonDocument.Parse(l["layout-case ".Length..]).RootElement).ToList();
        var cases = LayoutCase.All();
        Assert.Equal(cases.Count, lines.Count);
        var validate = ValidateConfigVerdicts(cases);
        var disagreements = new List<string>();
        int refused = 0;
        for (int i = 0; i < cases.Count; i++)
        {
            var c = cases[i];
            Assert.Equal(c.ZeroStage, lines[i].GetProperty("ZeroStage").GetInt32());
            string initialize = Normalise(lines[i].GetProperty("verdict").GetString()!);
            if (initialize != "ok") refused++;
            if (initialize != validate[i]) disagreements.Add($"{c}: Initialize: {initialize}; validate-config: {validate[i]}");
        }
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements));
        // The table exercises both verdicts: the ZeRO-3 × pipeline rule, wrong stage keys and hpZ sizes refuse some cases.
        Assert.InRange(refused, cases.Count / 4, cases.Count - cases.Count / 4);
    }

    /// <summary>
    /// The real command's verdict on each case: one <c>dss validate-config --world-size 4 --pipeline P --tensor T FILE...</c>
    /// per layout over the cases' config files; "ok", or its error lines joined as Initialize's are.
    /// </summary>
    private static List<string> ValidateConfigVerdicts(IReadOnlyList<LayoutCase> cases)
    {
        var dir = Directory.CreateTempSubdirectory("dss-layout-table-").FullName;
        try
        {
            var files = cases.Select((c, i) => Path.Combine(dir, $"case{i:D3}.json")).ToList();
            for (int i = 0; i < cases.Count; i++) File.WriteAllText(files[i], cases[i].ConfigJson);
            var verdicts = new string[cases.Count];
            foreach (var layout in Enumerable.Range(0, cases.Count).GroupBy(i => (cases[i].Pipeline, cases[i].Tensor)))
            {
                var o = new StringWriter();
                new ValidateConfigCommand().Run(["--world-size", "4", "--pipeline", layout.Key.Pipeline.ToString(), "--tensor", layout.Key.Tensor.ToString(),
                    .. layout.Select(i => files[i])], o, new StringWriter());
                var output = o.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
                foreach (int i in layout)
                {
                    var mine = output.Where(l => l.StartsWith(files[i] + ": ", StringComparison.Ordinal)).Select(l => l[(files[i].Length + 2)..]).ToList();
                    var errors = mine.Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).Select(l => l["error: ".Length..]).ToList();
                    Assert.True(errors.Count > 0 || mine.Any(l => l.StartsWith("ok: ", StringComparison.Ordinal)), $"validate-config printed no verdict for {cases[i]}: {o}");
                    verdicts[i] = errors.Count == 0 ? "ok" : Normalise(string.Join(" | ", errors));
                }
            }
            return verdicts.ToList();
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The phrase naming where the pipeline size came from ("the PipelineModule's stages", "--pipeline", …) as one token.</summary>
    private static string Normalise(string verdict) =>
        Regex.Replace(verdict, @"(--pipeline|pipeline\.stages|the PipelineModule's stages|the mpu's pipeline size|the pipeline size \(the model is not a PipelineModule\)|the pipeline size) is (\d+)",
            "PIPELINE is $2");
}
