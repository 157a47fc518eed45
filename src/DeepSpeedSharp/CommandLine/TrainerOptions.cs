using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace DeepSpeedSharp.CommandLine;

/// <summary>Reads an option's text; false when the text is not a valid value.</summary>
public delegate bool ValueParser<T>(string text, out T value);

/// <summary>
/// System.CommandLine options for a trainer's command line (and the <c>dss</c> tool's), each with a description and,
/// for a bad or missing value, an error that names the option and says what it needs:
/// <c>--steps needs an integer >= 0, got 'abc'</c>.
/// </summary>
public static class TrainerOptions
{
    /// <summary>An option with one value read by <paramref name="parse"/>; absent, it is <paramref name="defaultValue"/>.</summary>
    /// <param name="name">The option, e.g. <c>--ranks</c>.</param>
    /// <param name="valueName">The value's placeholder in help, e.g. <c>N</c>.</param>
    /// <param name="description">What the option does (help).</param>
    /// <param name="parse">Reads the value.</param>
    /// <param name="requirement">What a valid value is, for the error: "a positive integer".</param>
    /// <param name="defaultValue">The value when the option is absent.</param>
    /// <param name="aliases">Other names of the option.</param>
    public static Option<T> Value<T>(string name, string valueName, string description, ValueParser<T> parse, string requirement,
        T defaultValue, params string[] aliases)
    {
        var option = new Option<T>(name, aliases)
        {
            Description = description,
            HelpName = valueName,
            // Zero or one token, so that a missing value reaches the parser below and gets the same message.
            Arity = ArgumentArity.ZeroOrOne,
            CustomParser = r =>
            {
                if (r.Parent is OptionResult { Implicit: true }) return defaultValue;
                if (r.Tokens.Count == 0)
                {
                    r.AddError($"{name} needs {requirement}");
                    return defaultValue;
                }
                var text = r.Tokens[0].Value;
                if (parse(text, out var value)) return value;
                r.AddError($"{name} needs {requirement}, got '{text}'");
                return defaultValue;
            },
        };
        // The parser above is not called for an option given without a value.
        option.Validators.Add(r =>
        {
            if (!r.Implicit && r.Tokens.Count == 0) r.AddError($"{name} needs {requirement}");
        });
        // The default applies whether or not help shows it (a list's default would print as its type name).
        option.DefaultValueFactory = _ => defaultValue;
        return option;
    }

    /// <summary>An integer option of at least <paramref name="min"/>.</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min = 1, string valueName = "N") =>
        Value(name, valueName, description, (string s, out int v) => ParseInt(s, min, out v), IntRequirement(min), defaultValue);

    /// <summary>An optional integer option of at least <paramref name="min"/> (null when absent).</summary>
    public static Option<int?> OptionalInt(string name, string description, int min = 1, string valueName = "N") =>
        Value<int?>(name, valueName, description, (string s, out int? v) => (v = ParseInt(s, min, out int i) ? i : null) != null,
            IntRequirement(min), null);

    /// <summary>A number option.</summary>
    public static Option<double> Double(string name, string description, double defaultValue, string valueName = "X") =>
        Value(name, valueName, description, (string s, out double v) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out v)
            && double.IsFinite(v), "a number", defaultValue);

    /// <summary>An optional text option (null when absent): a file, a directory, a name.</summary>
    public static Option<string?> Text(string name, string valueName, string description, params string[] aliases) =>
        Value<string?>(name, valueName, description, (string s, out string? v) => (v = s).Length > 0, $"a {valueName.ToLowerInvariant()}", null, aliases);

    /// <summary>An option whose value is one of <paramref name="allowed"/> (compared as written).</summary>
    public static Option<string> Choice(string name, string description, string defaultValue, params string[] allowed) =>
        Choice(name, string.Join('|', allowed), description, defaultValue, allowed);

    /// <summary>An option whose value is one of <paramref name="allowed"/>, shown in help as <paramref name="valueName"/>.</summary>
    public static Option<string> Choice(string name, string valueName, string description, string defaultValue, string[] allowed) =>
        Value(name, valueName, description, (string s, out string v) => allowed.Contains(v = s, StringComparer.Ordinal),
            $"one of {string.Join(", ", allowed)}", defaultValue);

    /// <summary>A switch: true when given.</summary>
    public static Option<bool> Flag(string name, string description, params string[] aliases) => new(name, aliases) { Description = description };

    private static bool ParseInt(string s, int min, out int v) =>
        int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v) && v >= min;

    private static string IntRequirement(int min) => min == 1 ? "a positive integer" : min == 0 ? "an integer >= 0" : $"an integer >= {min}";
}
