namespace DeepSpeedSharp.Config;

/// <summary>
/// A DeepSpeed config could not be read or is invalid. Each error names the offending key (with its path,
/// e.g. <c>zero_optimization.stage</c>), the value, and what would be accepted. A config with several errors reports
/// them all: <see cref="Errors"/> holds one line per error, and the message is <c>N errors in FILE:</c> followed by
/// those lines (or just the line, prefixed with the file, when there is one).
/// </summary>
public sealed class DeepSpeedConfigException : Exception
{
    /// <summary>Creates the exception with a user-facing message (one error).</summary>
    public DeepSpeedConfigException(string message) : base(Clip(message)) => Errors = [Clip(message)];

    /// <summary>Creates the exception with a user-facing message and the underlying cause.</summary>
    public DeepSpeedConfigException(string message, Exception inner) : base(Clip(message), inner) => Errors = [Clip(message)];

    private DeepSpeedConfigException(string message, IReadOnlyList<string> errors, string? file, Exception? inner)
        : base(Clip(message), inner)
    {
        Errors = errors.Select(Clip).ToList();
        File = file;
    }

    /// <summary>
    /// The error for text that is not JSON, at 1-based line and column ("not valid JSON at line 2, column 32: ',' is an
    /// invalid start of a property name…"); System.Text.Json's own positions count from 0.
    /// </summary>
    internal static DeepSpeedConfigException InvalidJson(System.Text.Json.JsonException e)
    {
        var what = System.Text.RegularExpressions.Regex.Replace(e.Message, @"\s*(Path: \S*\s*\|\s*)?LineNumber: \d+ \| BytePositionInLine: \d+\.?\s*$", "").TrimEnd();
        var where = e.LineNumber is { } line ? $" at line {line + 1}" + (e.BytePositionInLine is { } col ? $", column {col + 1}" : "") : "";
        return new DeepSpeedConfigException($"not valid JSON{where}: {what}", e);
    }

    /// <summary>The longest unbroken run of characters (a value, a key, a path) a message shows whole.</summary>
    private const int LongestRun = 256;

    /// <summary>
    /// A message as it is shown: any run of more than 256 characters without a space (a pasted value, a key) is cut
    /// to its first 64 with its length, so that a 1 MB string in a config is not echoed by validate-config, by every rank
    /// and by the launcher.
    /// </summary>
    internal static string Clip(string message)
    {
        if (message.Length <= LongestRun) return message;
        var sb = new System.Text.StringBuilder(Math.Min(message.Length, 4096));
        int i = 0;
        while (i < message.Length)
        {
            int end = i;
            while (end < message.Length && !char.IsWhiteSpace(message[end])) end++;
            int run = end - i;
            if (run > LongestRun) sb.Append(message, i, 64).Append($"… ({run} characters)");
            else sb.Append(message, i, run);
            if (end < message.Length) sb.Append(message[end]);
            i = end + 1;
        }
        return sb.ToString();
    }

    /// <summary>Every error found, one line each, without the file name (at least one).</summary>
    public IReadOnlyList<string> Errors { get; }

    /// <summary>The config file the errors are in, when the config was read from a file.</summary>
    public string? File { get; }

    /// <summary>One exception for all <paramref name="errors"/> of a config (read from <paramref name="file"/>, if any).</summary>
    public static DeepSpeedConfigException Of(IReadOnlyList<string> errors, string? file = null, Exception? inner = null)
    {
        if (errors.Count == 0) throw new ArgumentException("no errors", nameof(errors));
        var message = errors.Count == 1
            ? (file is null ? errors[0] : $"{file}: {errors[0]}")
            : $"{errors.Count} errors in {file ?? "the config"}:" + string.Concat(errors.Select(e => "\n  " + e));
        return new DeepSpeedConfigException(message, errors, file, inner);
    }
}
