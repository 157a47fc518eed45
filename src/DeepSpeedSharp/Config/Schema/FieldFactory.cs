namespace DeepSpeedSharp.Config.Schema;

/// <summary>Shorthand for building fields of <typeparamref name="T"/> with type inference on the value kind.</summary>
internal static class Fields<T>
{
    public static Field<T> Of<V>(string key, ValueKind<V> kind, Func<T, V> get, Func<T, V, T> set, Action<V, string>? check = null) =>
        new ValueField<T, V>(key, kind, get, set, check);

    public static Field<T> Section<S>(string key, SectionSchema<S> schema, Func<T, S> get, Func<T, S, T> set) =>
        new SectionField<T, S>(key, schema, get, set);
}
