using System.Runtime.InteropServices;
using DeepSpeedSharp.Optim.CpuAdam;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Element conversions between the floating-point types of a safetensors file and float32, in managed code, with the bits
/// <c>Tensor.to(dtype)</c> of libtorch gives: float32 → bfloat16 / float16 round to nearest even
/// (<see cref="LowPrecisionRounding"/>: NaN stays NaN, float16 overflow becomes infinity), float64 → float32 rounds to
/// nearest, and the widenings are exact.
/// </summary>
internal static class TensorElements
{
    /// <summary>True for the floating-point types (those an export converts to the requested dtype).</summary>
    public static bool IsFloatingPoint(ScalarType type) => type is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>Widens (or, from float64, rounds) the elements of type <paramref name="type"/> in <paramref name="source"/> to float32.</summary>
    public static void ToFloat(ReadOnlySpan<byte> source, ScalarType type, Span<float> destination)
    {
        switch (type)
        {
            case ScalarType.Float32:
                MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case ScalarType.Float64:
                var doubles = MemoryMarshal.Cast<byte, double>(source);
                for (int i = 0; i < doubles.Length; i++) destination[i] = (float)doubles[i];
                break;
            case ScalarType.BFloat16:
                var bf16 = MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < bf16.Length; i++) destination[i] = BitConverter.UInt32BitsToSingle((uint)bf16[i] << 16);
                break;
            case ScalarType.Float16:
                var halves = MemoryMarshal.Cast<byte, Half>(source);
                for (int i = 0; i < halves.Length; i++) destination[i] = (float)halves[i];
                break;
            default:
                throw new ArgumentException($"{type} is not a floating-point type", nameof(type));
        }
    }

    /// <summary>Stores the float32 values of <paramref name="source"/> as <paramref name="type"/> (float32, bfloat16 or float16) in <paramref name="destination"/>.</summary>
    public static void FromFloat(ReadOnlySpan<float> source, ScalarType type, Span<byte> destination)
    {
        switch (type)
        {
            case ScalarType.Float32:
                MemoryMarshal.AsBytes(source).CopyTo(destination);
                break;
            case ScalarType.BFloat16:
                var bf16 = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < source.Length; i++) bf16[i] = LowPrecisionRounding.ToBFloat16(source[i]);
                break;
            case ScalarType.Float16:
                var halves = MemoryMarshal.Cast<byte, ushort>(destination);
                for (int i = 0; i < source.Length; i++) halves[i] = LowPrecisionRounding.ToHalf(source[i]);
                break;
            default:
                throw new ArgumentException($"cannot store float32 values as {type}: use Float32, BFloat16 or Float16", nameof(type));
        }
    }
}
