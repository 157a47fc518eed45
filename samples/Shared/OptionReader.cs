using System.Globalization;

namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// Reads a sample's command line, <c>--name value</c> or <c>--name=value</c>, one option at a time: an unknown option
/// is an error that lists the known ones, a switch given a value or an option missing its value is an error naming it;
/// every error is one line (an <see cref="ArgumentException"/>).
/// </summary>
public sealed class OptionReader
{
    private readonly string[] args;
    private readonly IReadOnlyCollection<string> known, switches;
    private int next;
    private string? inline;

    /// <param name="args">The command line.</param>
    /// <param name="known">Every option the sample accepts.</param>
    /// <param name="switches">The options that take no value.</param>
    public OptionReader(string[] args, IReadOnlyCollection<string> known, IReadOnlyCollection<string> switches)
    {
        this.args = args ?? throw new ArgumentNullException(nameof(args));
        this.known = known;
        this.switches = switches;
    }

    /// <summary>The option being read.</summary>
    public string Name { get; private set; } = "";

    /// <summary>Moves to the next option; false at the end.</summary>
    public bool Next()
    {
        if (next >= args.Length) return false;
        string arg = args[next++];
        Name = arg;
        inline = null;
        int eq = arg.IndexOf('=');
        if (arg.StartsWith("--", StringComparison.Ordinal) && eq > 0) { Name = arg[..eq]; inline = arg[(eq + 1)..]; }
        if (!known.Contains(Name)) throw new ArgumentException($"unknown option '{arg}'; known options: {string.Join(" ", known)}");
        if (switches.Contains(Name) && inline != null) throw new ArgumentException($"option {Name} takes no value, got '{arg}'");
        return true;
    }

    /// <summary>The option's value: after '=' or the next argument.</summary>
    public string Value() => inline ?? (next < args.Length && !args[next].StartsWith("--", StringComparison.Ordinal)
        ? args[next++] : throw new ArgumentException($"option {Name} needs a value"));

    /// <summary>The value as an integer ≥ <paramref name="min"/>.</summary>
    public int Int(int min = 1)
    {
        string value = Value();
        if (!int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) || v < min)
            throw new ArgumentException($"{Name} must be an integer ≥ {min}, got '{value}'");
        return v;
    }

    /// <summary>The value as a number.</summary>
    public double Double()
    {
        string value = Value();
        return double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out double v)
            ? v : throw new ArgumentException($"{Name} must be a number, got '{value}'");
    }
}
