using DeepSpeedSharp.Native;

namespace DeepSpeedSharp.Tests.Precision;

/// <summary>Issue 34: the CPU's bf16 support is read and said (bf16 without native instructions runs ~10× slower than fp32).</summary>
public class CpuFeaturesTests
{
    [Fact]
    public void NativeAndEmulatedBf16AreToldApart()
    {
        var avx512 = CpuFeatures.Parse("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nflags\t\t: fpu avx2 avx512f avx512_bf16\n");
        Assert.True(avx512.NativeBf16);
        Assert.Equal("Intel(R) Xeon(R) Processor", avx512.Model);
        Assert.Equal("AVX2, AVX-512F; bf16: native (AVX-512-BF16)", avx512.Describe());
        var avx2 = CpuFeatures.Parse("model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse4_2 avx2 fma\n");
        Assert.False(avx2.NativeBf16);
        Assert.Equal("AVX2; bf16: emulated (no AVX-512-BF16 or AMX: bf16 matrix products run ~10× slower than fp32)", avx2.Describe());
        Assert.Equal("unknown", CpuFeatures.Parse("").Describe());
    }
}
