using TorchSharp;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// Conversions used where a reduction cannot run in the tensor's own dtype: 16-bit floats are widened to float32
/// for the transport's reduction and rounded back once (to nearest even), optionally divided by n for ReduceOp.Avg.
/// </summary>
internal static unsafe class ElementConvert
{
    /// <summary>True for bfloat16 and float16, which are reduced in float32.</summary>
    public static bool IsHalf(torch.ScalarType t) => t is torch.ScalarType.BFloat16 or torch.ScalarType.Float16;

    /// <summary>Widens <paramref name="count"/> 16-bit values at <paramref name="src"/> into float32 at <paramref name="dst"/>.</summary>
    public static void ToFloat(torch.ScalarType dtype, byte* src, float* dst, long count)
    {
        if (dtype == torch.ScalarType.BFloat16)
            for (long i = 0; i < count; i++) dst[i] = BitConverter.Int32BitsToSingle(((ushort*)src)[i] << 16);
        else
            for (long i = 0; i < count; i++) dst[i] = (float)((Half*)src)[i];
    }

    /// <summary>Rounds float32 values back to the 16-bit dtype, dividing by <paramref name="divisor"/> first when it is not 1.</summary>
    public static void FromFloat(torch.ScalarType dtype, float* src, byte* dst, long count, float divisor = 1f)
    {
        bool div = divisor != 1f;
        if (dtype == torch.ScalarType.BFloat16)
            for (long i = 0; i < count; i++) ((ushort*)dst)[i] = Reducer.ToBf16(div ? src[i] / divisor : src[i]);
        else
            for (long i = 0; i < count; i++) ((Half*)dst)[i] = (Half)(div ? src[i] / divisor : src[i]);
    }

    /// <summary>Divides float32/float64 values in place by <paramref name="n"/> (the Avg step after a Sum).</summary>
    public static void Divide(torch.ScalarType dtype, byte* data, long count, int n)
    {
        if (n == 1) return;
        if (dtype == torch.ScalarType.Float32) { float d = n; for (long i = 0; i < count; i++) ((float*)data)[i] /= d; }
        else if (dtype == torch.ScalarType.Float64) { double d = n; for (long i = 0; i < count; i++) ((double*)data)[i] /= d; }
        else throw new ArgumentException($"ReduceOp.Avg needs a floating-point tensor; got {dtype}.");
    }
}
