using DeepSpeedSharp.Comm;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// One all-gather of a ZeRO-3 parameter in flight: the flat buffer that will hold the full value, the collectives
/// filling it, and what to do once they finished (dequantize, for qwZ). Owns its temporaries.
/// </summary>
internal sealed class PendingGather
{
    private readonly Work?[] works;
    private readonly Action? finish;
    private readonly Tensor[] temporaries;

    /// <param name="full">The flat buffer of the full (padded) value; survives the gather.</param>
    /// <param name="works">The collectives that fill it (null entries are already done).</param>
    /// <param name="finish">Runs after the collectives, before the temporaries are freed.</param>
    /// <param name="fromPrimary">True when the value came from the primary partitions (over the whole data-parallel group).</param>
    /// <param name="temporaries">Buffers freed when the gather completes (inputs, received quantized data).</param>
    public PendingGather(Tensor full, Work?[] works, Action? finish, bool fromPrimary, params Tensor[] temporaries)
    {
        Full = full;
        this.works = works;
        this.finish = finish;
        FromPrimary = fromPrimary;
        this.temporaries = temporaries;
    }

    public Tensor Full { get; }

    public bool FromPrimary { get; }

    /// <summary>True when no collective is in flight (a group of one).</summary>
    public bool IsDone => works.All(w => w is null);

    /// <summary>Waits for the collectives, finishes the value and frees the temporaries.</summary>
    public void Wait()
    {
        foreach (var w in works) w?.Wait();
        finish?.Invoke();
        foreach (var t in temporaries) t.Dispose();
    }
}
