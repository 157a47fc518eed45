using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config;

/// <summary>What a config key that DeepSpeedSharp accepts does here.</summary>
public enum KeyEffectKind
{
    /// <summary>The engine reads the key and acts on it.</summary>
    Implemented,
    /// <summary>Accepted, but it changes nothing here (the note says why); listed by <c>validate-config</c> and at start.</summary>
    NoEffect,
    /// <summary>Accepted only at its default (or inactive) value: any other value is an error saying what to change.</summary>
    Rejected,
}

/// <summary>One row of <see cref="Keys.ConfigKeyTable"/>: a key's dotted path, its effect here, and the note a user reads.</summary>
/// <param name="Key">The canonical dotted path, e.g. <c>zero_optimization.stage</c>.</param>
/// <param name="Kind">Implemented, no effect, or rejected.</param>
/// <param name="Note">For implemented keys what acts on it; otherwise the reason (and, for rejected keys, what to do).</param>
public sealed record ConfigKeyEffect(string Key, KeyEffectKind Kind, string Note)
{
    /// <summary>For rejected keys: which raw values are rejected (null: any value other than the default, or an
    /// active section/flag for keys without a field).</summary>
    internal Func<JsonNode?, bool>? RejectWhen { get; init; }
}

/// <summary>A key present in a config file that has no effect in DeepSpeedSharp, with the reason.</summary>
/// <param name="Key">The dotted path as written in the file.</param>
/// <param name="Reason">Why it has no effect here.</param>
public sealed record NoEffectKey(string Key, string Reason)
{
    /// <summary><c>key: reason</c>.</summary>
    public override string ToString() => $"{Key}: {Reason}";
}
