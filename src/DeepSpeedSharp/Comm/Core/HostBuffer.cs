using TorchSharp;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>Contiguous host memory a backend reads or writes: a pointer, an element count and a dtype.</summary>
internal readonly unsafe struct HostBuffer
{
    public HostBuffer(byte* ptr, long count, torch.ScalarType dtype)
    {
        Ptr = ptr;
        Count = count;
        DType = dtype;
        ElementSize = CommDType.ElementSize(dtype);
    }

    public byte* Ptr { get; }
    public long Count { get; }
    public torch.ScalarType DType { get; }
    public int ElementSize { get; }
    public long Bytes => Count * ElementSize;

    /// <summary>Elements [offset, offset+count) of this buffer.</summary>
    public HostBuffer Slice(long offset, long count) => new(Ptr + offset * ElementSize, count, DType);

    public byte* At(long element) => Ptr + element * ElementSize;
}
