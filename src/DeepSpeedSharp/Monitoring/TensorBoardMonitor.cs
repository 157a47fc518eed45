using Google.Protobuf;
using Tensorboard;

namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// DeepSpeed's <c>tensorboard</c> monitor: scalar events in a TensorBoard event file
/// (<c>output_path/job_name/events.out.tfevents.&lt;unix time&gt;.&lt;host&gt;.&lt;pid&gt;</c>).
/// <para>The records are TensorBoard's <c>Event</c>/<c>Summary</c> protobuf messages as generated in TorchSharp
/// (package <c>Tensorboard</c>), serialised by Google.Protobuf and framed as TFRecords (<see cref="TfRecordFile"/>).
/// TorchSharp's own <c>SummaryWriter</c> is not used because in 0.107 it stores the wall time as a float (128-second
/// resolution today) and writes .NET ticks into the file-version event, takes the step as an int, and reopens the file
/// for every scalar.</para>
/// </summary>
public sealed class TensorBoardMonitor : IMonitor
{
    /// <summary>Creates the directory and the event file, starting with the <c>brain.Event:2</c> version record.</summary>
    public TensorBoardMonitor(string outputPath, string jobName)
    {
        if (string.IsNullOrWhiteSpace(jobName)) throw new ArgumentException("tensorboard.job_name must not be empty");
        LogDirectory = Path.GetFullPath(Path.Combine(outputPath, jobName));
        Directory.CreateDirectory(LogDirectory);
        long unix = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        FilePath = Path.Combine(LogDirectory, $"events.out.tfevents.{unix}.{Environment.MachineName}.{Environment.ProcessId}");
        using var stream = new FileStream(FilePath, FileMode.Create, FileAccess.Write);
        TfRecordFile.WriteRecord(stream, new Event { WallTime = Now(), FileVersion = "brain.Event:2" }.ToByteArray());
    }

    /// <inheritdoc/>
    public string Kind => "tensorboard";

    /// <inheritdoc/>
    public string LogDirectory { get; }

    /// <summary>The event file this monitor appends to.</summary>
    public string FilePath { get; }

    /// <inheritdoc/>
    public void WriteEvents(IReadOnlyList<MonitorEvent> events)
    {
        if (events.Count == 0) return;
        double wall = Now();
        using var stream = new FileStream(FilePath, FileMode.Append, FileAccess.Write);
        foreach (var e in events)
        {
            var summary = new Summary();
            summary.Value.Add(new Summary.Types.Value { Tag = e.Name, SimpleValue = (float)e.Value });
            TfRecordFile.WriteRecord(stream, new Event { WallTime = wall, Step = e.Step, Summary = summary }.ToByteArray());
        }
        stream.Flush(flushToDisk: false);
    }

    /// <summary>Reads an event file back: (wall time, step, tag, value) of every scalar, after checking the framing and CRCs.</summary>
    public static List<(double WallTime, long Step, string Tag, float Value)> ReadScalars(string path)
    {
        var result = new List<(double, long, string, float)>();
        foreach (var record in TfRecordFile.ReadRecords(path))
        {
            var ev = Event.Parser.ParseFrom(record);
            if (ev.Summary == null) continue;
            foreach (var v in ev.Summary.Value) result.Add((ev.WallTime, ev.Step, v.Tag, v.SimpleValue));
        }
        return result;
    }

    private static double Now() => DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 1000.0;
}
