using System.Globalization;

namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// DeepSpeed's <c>csv_monitor</c>: one CSV file per event name in <c>output_path/job_name/</c>, the name with '/' and
/// spaces turned into '_' (<c>Train_Samples_train_loss.csv</c>), a header row <c>step,&lt;last name segment&gt;</c>,
/// then one <c>step,value</c> row per event. Unlike DeepSpeed, which appends a second header to a file left by an
/// earlier run, the first write of this process starts the file afresh.
/// </summary>
public sealed class CsvMonitor : IMonitor
{
    private readonly HashSet<string> started = new(StringComparer.Ordinal);

    /// <summary>Creates <c>outputPath/jobName</c> (an empty output path means the current directory).</summary>
    public CsvMonitor(string outputPath, string jobName)
    {
        if (string.IsNullOrWhiteSpace(jobName)) throw new ArgumentException("csv_monitor.job_name must not be empty");
        LogDirectory = Path.GetFullPath(Path.Combine(outputPath, jobName));
        Directory.CreateDirectory(LogDirectory);
    }

    /// <inheritdoc/>
    public string Kind => "csv_monitor";

    /// <inheritdoc/>
    public string LogDirectory { get; }

    /// <summary>The file an event name is written to.</summary>
    public string FileFor(string eventName) => Path.Combine(LogDirectory, eventName.Replace('/', '_').Replace(' ', '_') + ".csv");

    /// <inheritdoc/>
    public void WriteEvents(IReadOnlyList<MonitorEvent> events)
    {
        foreach (var group in events.GroupBy(e => e.Name, StringComparer.Ordinal))
        {
            string path = FileFor(group.Key);
            bool fresh = started.Add(path);
            using var writer = new StreamWriter(path, append: !fresh);
            if (fresh)
            {
                int slash = group.Key.LastIndexOf('/');
                writer.WriteLine("step," + Quote(slash >= 0 ? group.Key[(slash + 1)..] : group.Key));
            }
            foreach (var e in group)
                writer.WriteLine(e.Step.ToString(CultureInfo.InvariantCulture) + "," + e.Value.ToString("R", CultureInfo.InvariantCulture));
        }
    }

    private static string Quote(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) < 0 ? field : "\"" + field.Replace("\"", "\"\"") + "\"";
}
