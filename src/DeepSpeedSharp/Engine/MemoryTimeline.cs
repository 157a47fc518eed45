using System.Diagnostics;
using System.Globalization;
using DeepSpeedSharp.Training;
using DeepSpeedSharp.Utils;

namespace DeepSpeedSharp.Engine;

/// <summary>
/// <c>memory_breakdown</c>'s timeline (DeepSpeed's <c>see_memory_usage</c> at the points of a step): during each step
/// that ends with a progress report, this rank's model-state bytes (parameters — with ZeRO-3's gathered weights —,
/// gradients, optimizer state) and its RSS are taken at every phase (after forward, after backward, after the gradient
/// reduction, before and after the optimizer step), then printed after the report, with the number of live .NET tensor
/// handles (each keeps its native tensor alive until disposed or finalized) and the memory the .NET garbage collector
/// holds (live objects and garbage not yet collected). Steps in between cost nothing.
/// </summary>
internal sealed class MemoryTimeline(Func<ModelStateBytes> bytes, int stepsPerPrint)
{
    private readonly List<(string Phase, ModelStateBytes Bytes, long Rss, long PeakRss, long Handles, long Managed)> points = [];

    /// <summary>True while the current step will be reported (the first step when every step is).</summary>
    private bool armed = stepsPerPrint == 1;

    /// <summary>Takes a snapshot named <paramref name="phase"/> when this step will be reported.</summary>
    public void Record(string phase)
    {
        if (!armed) return;
        using var self = Process.GetCurrentProcess();
        points.Add((phase, bytes(), self.WorkingSet64, self.PeakWorkingSet64, TorchSharp.torch.Tensor.TotalCount, GC.GetTotalMemory(false)));
    }

    /// <summary>After the optimizer step: prints the snapshots of a reported step and arms for the next reported one.</summary>
    public void AfterStep(long globalSteps)
    {
        if (points.Count > 0)
        {
            Log.Info($"memory timeline of step {globalSteps} (MiB, this rank): phase | parameters | gradients | optimizer state | model states | RSS | peak RSS | tensor handles | .NET heap");
            foreach (var (phase, b, rss, peak, handles, managed) in points)
                Log.Info($"  {phase,-28} | {Mib(b.Parameters),9} | {Mib(b.Gradients),9} | {Mib(b.OptimizerState),9} | {Mib(b.Total),9} | {Mib(rss),7} | {Mib(peak),7} | {handles,7} | {Mib(managed),7}");
            points.Clear();
        }
        armed = stepsPerPrint > 0 && (globalSteps + 1) % stepsPerPrint == 0;
    }

    private static string Mib(long bytes) => (bytes / 1048576.0).ToString("F1", CultureInfo.InvariantCulture);
}
