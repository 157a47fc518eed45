using DeepSpeedSharp.Config;

namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// DeepSpeed's <c>MonitorMaster</c> (<c>engine.monitor</c>): the monitors the config enables (<c>tensorboard</c>,
/// <c>csv_monitor</c>), active on global rank 0 only — on other ranks <see cref="Enabled"/> is false and nothing is
/// created. User code may write its own events (e.g. <c>Train/Samples/eval_loss</c>) through <see cref="WriteEvents"/>.
/// </summary>
public sealed class MonitorMaster
{
    /// <summary>A master with no monitors.</summary>
    public static MonitorMaster Disabled { get; } = new([]);

    /// <summary>Wraps already-built monitors.</summary>
    public MonitorMaster(IReadOnlyList<IMonitor> monitors) => Monitors = monitors;

    /// <summary>Builds the monitors enabled in <paramref name="config"/> when <paramref name="globalRank"/> is 0.</summary>
    public static MonitorMaster FromConfig(DeepSpeedConfig config, int globalRank)
    {
        if (globalRank != 0) return Disabled;
        var monitors = new List<IMonitor>();
        if (config.Tensorboard.Enabled) monitors.Add(new TensorBoardMonitor(config.Tensorboard.OutputPath, config.Tensorboard.JobName));
        if (config.CsvMonitor.Enabled) monitors.Add(new CsvMonitor(config.CsvMonitor.OutputPath, config.CsvMonitor.JobName));
        return monitors.Count == 0 ? Disabled : new MonitorMaster(monitors);
    }

    /// <summary>The active monitors (empty off rank 0 or when none is enabled).</summary>
    public IReadOnlyList<IMonitor> Monitors { get; }

    /// <summary>True when at least one monitor is active.</summary>
    public bool Enabled => Monitors.Count > 0;

    /// <summary>Writes the events to every active monitor.</summary>
    public void WriteEvents(IReadOnlyList<MonitorEvent> events)
    {
        foreach (var m in Monitors) m.WriteEvents(events);
    }
}
