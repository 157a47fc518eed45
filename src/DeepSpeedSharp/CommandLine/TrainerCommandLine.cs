using System.CommandLine;
using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.CommandLine;

/// <summary>
/// Parses a trainer's command line with System.CommandLine and turns what is wrong with it into one line: every unknown
/// option named (with the nearest known one when it is a likely typo), then the options' own messages.
/// </summary>
public static class TrainerCommandLine
{
    /// <summary>
    /// Parses <paramref name="args"/> with <paramref name="command"/>; throws <see cref="ArgumentException"/> with one line
    /// for an unknown option, a stray argument or a bad value. <c>--help</c> is not handled here (the result's
    /// <see cref="ParseResult.Action"/> is then the help action, for the caller to invoke).
    /// </summary>
    public static ParseResult Parse(Command command, IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(command);
        var problems = new List<string>();
        // A switch given a value (--full-vocab=yes): System.CommandLine would report only a stray 'yes'.
        var switches = command.Options.OfType<Option<bool>>().SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet(StringComparer.Ordinal);
        foreach (var arg in args)
            if (arg.Split('=', 2) is [var name, var value] && switches.Contains(name) && value is not ("true" or "false"))
                throw new ArgumentException($"{name} takes no value, got '{arg}'");
        var result = command.Parse(args);
        var known = command.Options.Where(o => !o.Hidden).SelectMany(o => o.Aliases.Prepend(o.Name)).Where(n => n.StartsWith("--", StringComparison.Ordinal)).ToList();
        foreach (var token in result.UnmatchedTokens)
        {
            if (!token.StartsWith('-')) { problems.Add($"unexpected argument '{token}'"); continue; }
            var name = token.Split('=', 2)[0];
            var near = KeySuggester.Suggest(name, known, maxDistance: 2);
            problems.Add($"unknown option '{token}'{(near != null ? $" (did you mean {near}?)" : "")}");
        }
        foreach (var error in result.Errors)
            if (!result.UnmatchedTokens.Any(t => error.Message.Contains($"'{t}'", StringComparison.Ordinal))) problems.Add(error.Message);
        if (problems.Count > 0)
            throw new ArgumentException(string.Join("; ", problems.Distinct()) +
                                        (result.UnmatchedTokens.Count > 0 ? $"; known options: {string.Join(" ", known)}" : ""));
        return result;
    }
}
