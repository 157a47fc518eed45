using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.CpuAdam;

/// <summary>Deterministic inputs for the CPU Adam tests.</summary>
internal static class CpuAdamTestData
{
    /// <summary>Normal-ish values scaled by <paramref name="scale"/>, from a fixed seed.</summary>
    public static float[] Random(int n, int seed, float scale = 1f)
    {
        var rng = new Random(seed);
        var a = new float[n];
        for (var i = 0; i < n; i++) a[i] = (float)((rng.NextDouble() * 2 - 1) + (rng.NextDouble() * 2 - 1)) * scale;
        return a;
    }

    /// <summary>Floats that exercise rounding: ties, subnormals, the fp16 overflow edge, zeros, infinities, then random bit
    /// patterns (no NaN).</summary>
    public static float[] RoundingEdgeCases(int randomCount, int seed)
    {
        var list = new List<float>
        {
            0f, -0f, 1f, -1f, float.Epsilon, -float.Epsilon, 1e-40f, -3e-39f, float.MaxValue, float.MinValue,
            float.PositiveInfinity, float.NegativeInfinity,
            65504f, 65519.99f, 65520f, 65536f, 1e5f, 6.1e-5f, 6.0e-5f, 5.96e-8f, 2.98e-8f, 2.99e-8f, 1e-9f, 3e-45f,
            BitConverter.UInt32BitsToSingle(0x3F808000), // bf16 tie, even below: rounds down
            BitConverter.UInt32BitsToSingle(0x3F818000), // bf16 tie, odd below: rounds up
            BitConverter.UInt32BitsToSingle(0x3F801000), // fp16 tie (bit 12), even below
            BitConverter.UInt32BitsToSingle(0x3F803000), // fp16 tie, odd below
            BitConverter.UInt32BitsToSingle(0x7F7FFFFF), BitConverter.UInt32BitsToSingle(0x7F7F8000),
            BitConverter.UInt32BitsToSingle(0x00008000), BitConverter.UInt32BitsToSingle(0x0001FFFF),
        };
        var rng = new Random(seed);
        while (list.Count < randomCount)
        {
            var f = BitConverter.UInt32BitsToSingle((uint)rng.NextInt64(0, 1L << 32));
            if (!float.IsNaN(f)) list.Add(f);
        }
        // Values in fp16's range, where most model weights are.
        for (var i = 0; i < randomCount; i++) list.Add((float)(rng.NextDouble() * 2 - 1) * MathF.Pow(2, rng.Next(-26, 17)));
        return list.ToArray();
    }

    /// <summary>A CPU fp32 tensor with a copy of <paramref name="values"/>.</summary>
    public static Tensor Tensor(float[] values) => tensor(values, ScalarType.Float32);

    /// <summary>The raw 16-bit values of a bf16/fp16 tensor.</summary>
    public static ushort[] Bits16(Tensor t) => MemoryMarshal.Cast<byte, ushort>(t.contiguous().bytes).ToArray();

    /// <summary>The floats of an fp32 tensor.</summary>
    public static float[] Floats(Tensor t) => MemoryMarshal.Cast<byte, float>(t.contiguous().bytes).ToArray();
}
