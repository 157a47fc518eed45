using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim.CpuAdam;

/// <summary>Spans over the native memory of contiguous CPU tensors, with checks that name the tensor.</summary>
internal static class TensorMemory
{
    /// <summary>The elements of a contiguous CPU fp32 tensor, writable in place.</summary>
    public static Span<float> Floats(Tensor t, string what) =>
        MemoryMarshal.Cast<byte, float>(Bytes(t, ScalarType.Float32, what));

    /// <summary>The elements of a contiguous CPU bf16 or fp16 tensor as raw 16-bit values.</summary>
    public static Span<ushort> Halves(Tensor t, string what)
    {
        if (t.dtype is not (ScalarType.BFloat16 or ScalarType.Float16))
            throw new ArgumentException($"CPU Adam: {what} must be BFloat16 or Float16, got {t.dtype}.");
        return MemoryMarshal.Cast<byte, ushort>(Bytes(t, t.dtype, what));
    }

    private static Span<byte> Bytes(Tensor t, ScalarType dtype, string what)
    {
        if (t.dtype != dtype) throw new ArgumentException($"CPU Adam: {what} must be {dtype}, got {t.dtype}.");
        if (t.device_type != DeviceType.CPU)
            throw new ArgumentException(
                $"CPU Adam: {what} is on {t.device} and must be on the CPU (DeepSpeed: enable \"offload_optimizer\": {{\"device\": \"cpu\"}}).");
        if (!t.is_contiguous()) throw new ArgumentException($"CPU Adam: {what} must be contiguous.");
        var bytes = t.numel() * t.ElementSize;
        if (bytes > int.MaxValue)
            throw new ArgumentException($"CPU Adam: {what} has {t.numel()} elements ({bytes} bytes); split it into tensors under 2 GiB.");
        return t.numel() == 0 ? Span<byte>.Empty : t.bytes;
    }
}
