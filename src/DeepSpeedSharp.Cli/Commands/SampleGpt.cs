using System.Diagnostics;
using System.Text.Json;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// The sample GPT trainer (<c>samples/Gpt</c>, Gpt.dll) as the commands that run it see it: where its dll is, and
/// what size of model its flags describe. The CLI does not reference the sample; it starts it as a process.
/// </summary>
internal static class SampleGpt
{
    /// <summary>
    /// The full path of Gpt.dll: <paramref name="given"/> (<c>--gpt PATH</c>) if set, else beside dss, else
    /// <c>samples/Gpt/bin/{Release,Debug}/net10.0</c> under the current directory.
    /// </summary>
    /// <exception cref="FileNotFoundException">No candidate exists; the message lists the paths looked at.</exception>
    public static string Resolve(string? given)
    {
        var candidates = given != null ? [given] : new[]
        {
            Path.Combine(AppContext.BaseDirectory, "Gpt.dll"),
            Path.Combine("samples", "Gpt", "bin", "Release", "net10.0", "Gpt.dll"),
            Path.Combine("samples", "Gpt", "bin", "Debug", "net10.0", "Gpt.dll"),
        };
        return candidates.Select(Path.GetFullPath).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"the sample Gpt.dll was not found (looked at {string.Join(", ", candidates)}); build samples/Gpt or pass --gpt PATH");
    }

    /// <summary>
    /// Runs <c>dotnet GPT-DLL MODEL-FLAGS --describe-parameters</c> and reads its line
    /// <c>{"parameters": N, "largest_parameter": M}</c>.
    /// </summary>
    /// <param name="gptDll">The sample's dll (see <see cref="Resolve"/>).</param>
    /// <param name="modelFlags">The sample's model flags, e.g. <c>--vocab 8192 --d-model 512 --layers 14</c>.</param>
    /// <exception cref="InvalidOperationException">The sample failed or printed no such line; the message holds its error line.</exception>
    public static (long Parameters, long LargestParameter) DescribeParameters(string gptDll, string modelFlags)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(gptDll);
        foreach (var a in modelFlags.Split(' ', StringSplitOptions.RemoveEmptyEntries)) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add("--describe-parameters");
        psi.Environment["OMP_NUM_THREADS"] = "1";
        using var proc = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        var stderr = proc.StandardError.ReadToEndAsync();
        string stdout = proc.StandardOutput.ReadToEnd();
        if (!proc.WaitForExit(120_000))
        {
            proc.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"{gptDll} {modelFlags} --describe-parameters did not finish in 120 s");
        }
        string? errorLine = stderr.Result.Split('\n').Select(l => l.Trim()).LastOrDefault(l => l.Length > 0);
        if (proc.ExitCode != 0)
            throw new InvalidOperationException($"the sample {gptDll} rejected --model \"{modelFlags}\" (exit {proc.ExitCode}): {errorLine ?? "no error output"}");
        foreach (var line in stdout.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith('{')))
        {
            try
            {
                using var json = JsonDocument.Parse(line);
                if (json.RootElement.TryGetProperty("parameters", out var p) && json.RootElement.TryGetProperty("largest_parameter", out var l))
                    return (p.GetInt64(), l.GetInt64());
            }
            catch (JsonException)
            {
                // not the line we want; keep looking
            }
        }
        throw new InvalidOperationException($"the sample {gptDll} printed no {{\"parameters\": N, \"largest_parameter\": M}} line for --model \"{modelFlags}\"" +
                                            (errorLine != null ? $": {errorLine}" : ""));
    }
}
