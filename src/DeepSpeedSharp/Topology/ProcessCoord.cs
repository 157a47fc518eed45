namespace DeepSpeedSharp.Topology;

/// <summary>A rank's coordinate in a <see cref="ProcessTopology"/> (DeepSpeed's <c>ProcessCoord</c> named tuple).</summary>
public sealed class ProcessCoord : IEquatable<ProcessCoord>
{
    private readonly string[] axes;
    private readonly int[] values;

    internal ProcessCoord(string[] axes, int[] values)
    {
        this.axes = axes;
        this.values = values;
    }

    /// <summary>The value on <paramref name="axis"/>.</summary>
    public int this[string axis]
    {
        get
        {
            int i = Array.IndexOf(axes, axis);
            return i >= 0 ? values[i] : throw new KeyNotFoundException($"the topology has no axis '{axis}' (axes: {string.Join(", ", axes)})");
        }
    }

    /// <summary>The pipeline stage (0 when the topology has no pipe axis).</summary>
    public int Pipe => Get(Axis.Pipe);

    /// <summary>The data-parallel index (0 when the topology has no data axis).</summary>
    public int Data => Get(Axis.Data);

    /// <summary>The tensor-parallel index (0 when the topology has no model axis).</summary>
    public int Model => Get(Axis.Model);

    private int Get(string axis)
    {
        int i = Array.IndexOf(axes, axis);
        return i >= 0 ? values[i] : 0;
    }

    /// <summary>The coordinate with <paramref name="axis"/> set to <paramref name="value"/> (Python's <c>_replace</c>).</summary>
    public ProcessCoord With(string axis, int value)
    {
        int i = Array.IndexOf(axes, axis);
        if (i < 0) throw new KeyNotFoundException($"the topology has no axis '{axis}' (axes: {string.Join(", ", axes)})");
        var copy = (int[])values.Clone();
        copy[i] = value;
        return new ProcessCoord(axes, copy);
    }

    /// <summary>As a dictionary from axis to value.</summary>
    public IReadOnlyDictionary<string, int> ToDictionary() => axes.Select((a, i) => (a, values[i])).ToDictionary(x => x.a, x => x.Item2, StringComparer.Ordinal);

    /// <inheritdoc/>
    public bool Equals(ProcessCoord? other) => other != null && axes.SequenceEqual(other.axes) && values.SequenceEqual(other.values);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ProcessCoord);

    /// <inheritdoc/>
    public override int GetHashCode() => values.Aggregate(17, (h, v) => h * 31 + v);

    /// <inheritdoc/>
    public override string ToString() => $"ProcessCoord({string.Join(", ", axes.Select((a, i) => $"{a}={values[i]}"))})";
}
