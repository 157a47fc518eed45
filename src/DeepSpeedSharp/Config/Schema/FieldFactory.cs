namespace DeepSpeedSharp.Config.Schema;

/// <summary>Shorthand for building fields of <typeparamref name="T"/> with type inference on the value kind.</summary>
internal static class Fields<T>
{
    public static Field<T> Of<V>(string key, ValueKind<V> kind, Func<T, V> get, Func<T, V, T> set, Action<V, string>? check = null) =>
        new ValueField<T, V>(key, kind, get, set, check);

    public static Field<T> Section<S>(string key, SectionSchema<S> schema, Func<T, S> get, Func<T, S, T> set) =>
        new SectionField<T, S>(key, schema, get, set);

    /// <summary>A boolean that must stay false because the feature would change training and is not implemented.</summary>
    public static Field<T> FalseOnly(string key, string why, Func<T, bool> get, Func<T, bool, T> set) =>
        new ValueField<T, bool>(key, Kinds.Bool, get, set, (v, p) =>
        {
            if (v) throw new DeepSpeedConfigException($"'{p}': true is not supported by DeepSpeedSharp ({why}); set it to false or remove it");
        });
}
