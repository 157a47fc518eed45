using System.Globalization;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Native;
using DeepSpeedSharp.Samples.Gpt.Model;
using DeepSpeedSharp.Zero;
using TorchSharp;

namespace DeepSpeedSharp.Samples.Gpt;

/// <summary>
/// <c>--describe-parameters</c>: the size of the model the model flags describe, as one JSON line
/// <c>{"parameters": N, "largest_parameter": M}</c> (trainable elements, and elements of the largest parameter tensor),
/// which <c>dss estimate --model</c> reads. No training, no launcher, no process group.
/// </summary>
public static class ParameterDescription
{
    /// <summary>
    /// Builds <paramref name="model"/> on the meta device — parameters with shapes but no storage, so a model of any size
    /// costs no memory — counts it with <see cref="ZeroMemorySetup.FromModel"/> and writes the line. Returns exit code 0.
    /// </summary>
    public static int Print(GptConfig model, TextWriter stdout)
    {
        TorchRuntime.EnsureLoaded();
        var previous = torch.get_default_device();
        torch.set_default_device(torch.META);
        ZeroMemorySetup setup;
        try
        {
            using var gpt = new GptModel(model);
            setup = ZeroMemorySetup.FromModel(DeepSpeedConfig.FromJson("{}"), gpt, ranks: 1);
        }
        finally
        {
            torch.set_default_device(previous);
        }
        stdout.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{{\"parameters\": {setup.Parameters}, \"largest_parameter\": {setup.LargestParameter}}}"));
        return 0;
    }
}
