namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// One scalar for the monitors, as DeepSpeed's <c>(name, value, step)</c> tuples: <paramref name="Name"/> such as
/// <c>Train/Samples/train_loss</c>, <paramref name="Value"/>, and <paramref name="Step"/> — DeepSpeed's engine uses
/// the number of samples consumed (global_samples) as the x-axis.
/// </summary>
/// <param name="Name">Event name; '/' separates TensorBoard's groups.</param>
/// <param name="Value">The value.</param>
/// <param name="Step">The x-axis value (samples for the engine's own events).</param>
public readonly record struct MonitorEvent(string Name, double Value, long Step);

/// <summary>A destination for monitor events (CSV files, TensorBoard event files, ...).</summary>
public interface IMonitor
{
    /// <summary>Short name for messages: "csv_monitor", "tensorboard".</summary>
    string Kind { get; }

    /// <summary>The directory the monitor writes into.</summary>
    string LogDirectory { get; }

    /// <summary>Writes the events and makes them durable (flushed to the file) before returning.</summary>
    void WriteEvents(IReadOnlyList<MonitorEvent> events);
}
