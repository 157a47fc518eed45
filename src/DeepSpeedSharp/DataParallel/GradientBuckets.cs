using DeepSpeedSharp.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>
/// Packs the parameters' gradients, range by range of the flat layout, into one reused bucket buffer (in the
/// communication dtype) and unpacks results back. Missing gradients (unused parameters) pack as zeros.
/// </summary>
internal sealed class GradientBuckets : IDisposable
{
    private readonly FlatLayout layout;
    private readonly Tensor bucket;

    public GradientBuckets(FlatLayout layout, long bucketElements, ScalarType commType, Device device)
    {
        this.layout = layout;
        // As in DeepSpeed, a bucket takes at least one whole parameter (so reduce_bucket_size 0 means one parameter at a time).
        long largest = layout.Numels.DefaultIfEmpty(1).Max();
        BucketElements = Math.Max(1, Math.Min(Math.Max(bucketElements, largest), layout.Padded));
        bucket = zeros(BucketElements, commType, device).DetachFromDisposeScope();
    }

    public long BucketElements { get; }

    /// <summary>The dtype gradients are packed and communicated in.</summary>
    public ScalarType BucketType => bucket.dtype;

    /// <summary>Bytes of the bucket buffer.</summary>
    public long Bytes => bucket.numel() * bucket.element_size();

    /// <summary>The bucket ranges [start, end) covering the padded flat space, in order.</summary>
    public IEnumerable<(long Start, long End)> Ranges()
    {
        for (long s = 0; s < layout.Padded; s += BucketElements) yield return (s, Math.Min(s + BucketElements, layout.Padded));
    }

    /// <summary>Copies (and casts) the gradients of [start, end) into the bucket; returns the bucket view of that length.</summary>
    public Tensor Pack(long start, long end)
    {
        var view = bucket.narrow(0, 0, end - start);
        if (end > layout.Total) view.narrow(0, Math.Max(0, layout.Total - start), end - Math.Max(start, layout.Total)).zero_();
        foreach (var (i, pOff, rOff, n) in layout.Pieces(start, end))
        {
            var target = view.narrow(0, rOff, n);
            var grad = layout.Parameters[i].grad;
            if (grad is null) target.zero_();
            else using (var flat = grad.view(-1)) using (var piece = flat.narrow(0, pOff, n)) target.copy_(piece);
        }
        return view;
    }

    /// <summary>The first <paramref name="length"/> elements of the bucket buffer (what the last Pack returned).</summary>
    public Tensor View(long length) => bucket.narrow(0, 0, length);

    /// <summary>Copies (and casts) [start, end) of a flat gradient buffer into the bucket; returns the bucket view.</summary>
    public Tensor PackFrom(Tensor flatSource, long start, long end)
    {
        var view = bucket.narrow(0, 0, end - start);
        using var source = flatSource.narrow(0, start, end - start);
        view.copy_(source);
        return view;
    }

    /// <summary>Copies the bucket's [start, end) back into the gradients, creating missing ones.</summary>
    public void Unpack(Tensor view, long start, long end)
    {
        foreach (var (i, pOff, rOff, n) in layout.Pieces(start, end))
        {
            var p = layout.Parameters[i];
            if (p.grad is null) p.grad = zeros_like(p).DetachFromDisposeScope();
            using var flat = p.grad!.view(-1);
            using var piece = flat.narrow(0, pOff, n);
            using var source = view.narrow(0, rOff, n);
            piece.copy_(source);
        }
    }

    public void Dispose() => bucket.Dispose();
}
