using System.CommandLine;
using System.CommandLine.Parsing;
using DeepSpeedSharp.CommandLine;

namespace DeepSpeedSharp.Cli;

/// <summary>
/// Options for the `dss` commands (built by the library's <see cref="TrainerOptions"/>), each with a description and, for a bad value, an error that names the option and
/// says what it needs: <c>--ranks needs a positive integer, got 'abc'</c>.
/// </summary>
public static class CliOptions
{
    /// <summary>An option with one value read by <paramref name="parse"/>; absent, it is <paramref name="defaultValue"/>.</summary>
    /// <param name="name">The option, e.g. <c>--ranks</c>.</param>
    /// <param name="valueName">The value's placeholder in help, e.g. <c>N</c>.</param>
    /// <param name="description">What the option does (help).</param>
    /// <param name="parse">Reads the value.</param>
    /// <param name="requirement">What a valid value is, for the error: "a positive integer".</param>
    /// <param name="defaultValue">The value when the option is absent.</param>
    /// <param name="showDefault">Kept for the callers; help shows the value name (and a non-null default) either way.</param>
    /// <summary>The DIR argument of the checkpoint commands.</summary>
    public static Argument<string> CheckpointDirectory() =>
        Positional<string>("DIR", "the checkpoint directory (the one SaveCheckpoint wrote, holding 'latest' and the tags)", ArgumentArity.ExactlyOne);

    public static Option<T> Value<T>(string name, string valueName, string description, ValueParser<T> parse, string requirement,
        T defaultValue, bool showDefault = true) =>
        TrainerOptions.Value(name, valueName, description, parse, requirement, defaultValue);

    /// <summary>
    /// Positional values (files, directories) that refuse a word starting with '-': System.CommandLine would take an
    /// unknown option such as <c>--wrld-size</c> for a file name.
    /// </summary>
    public static Argument<T> Positional<T>(string name, string description, ArgumentArity arity)
    {
        var argument = new Argument<T>(name) { Description = description, Arity = arity };
        argument.Validators.Add(r =>
        {
            foreach (var token in r.Tokens)
                if (token.Value.Length > 1 && token.Value.StartsWith('-'))
                    r.AddError($"unknown option '{token.Value}'");
        });
        return argument;
    }

    /// <summary>An integer option of at least <paramref name="min"/>.</summary>
    public static Option<int> Int(string name, string description, int defaultValue, int min = 1, string valueName = "N") =>
        TrainerOptions.Int(name, description, defaultValue, min, valueName);

    /// <summary>An optional text option (null when absent): a file, a directory, a name.</summary>
    public static Option<string?> Text(string name, string valueName, string description) => TrainerOptions.Text(name, valueName, description);

    /// <summary>An option whose value is one of <paramref name="allowed"/> (compared as written).</summary>
    public static Option<string> Choice(string name, string description, string defaultValue, params string[] allowed) =>
        TrainerOptions.Choice(name, description, defaultValue, allowed);

    /// <summary>An option whose value is one of <paramref name="allowed"/>, shown in help as <paramref name="valueName"/>.</summary>
    public static Option<string> Choice(string name, string valueName, string description, string defaultValue, string[] allowed) =>
        TrainerOptions.Choice(name, valueName, description, defaultValue, allowed);

    /// <summary>A switch: true when given.</summary>
    public static Option<bool> Flag(string name, string description) => TrainerOptions.Flag(name, description);

    /// <summary>A comma-separated list of values, each read by <paramref name="parse"/> (e.g. <c>10M,100M</c>).</summary>
    public static Option<T[]> List<T>(string name, string valueName, string description, ValueParser<T> parse, string requirement, T[] defaultValue) =>
        Value(name, valueName, description, (string s, out T[] values) =>
        {
            var parts = s.Split(',');
            values = new T[parts.Length];
            for (int i = 0; i < parts.Length; i++)
                if (!parse(parts[i].Trim(), out values[i])) return false;
            return true;
        }, requirement, defaultValue, showDefault: false);
}
