using TorchSharp;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// The dtypes the collectives accept, and their element sizes. int8 is moved (all-gather, broadcast, all-to-all,
/// send/recv; ZeRO++ sends quantized weights and gradients as int8) but never reduced.
/// </summary>
internal static class CommDType
{
    public static bool IsSupported(torch.ScalarType t) => t is torch.ScalarType.Float32 or torch.ScalarType.BFloat16
        or torch.ScalarType.Float16 or torch.ScalarType.Float64 or torch.ScalarType.Int32 or torch.ScalarType.Int64 or torch.ScalarType.Int8;

    public static bool IsFloating(torch.ScalarType t) => t is torch.ScalarType.Float32 or torch.ScalarType.BFloat16
        or torch.ScalarType.Float16 or torch.ScalarType.Float64;

    public static int ElementSize(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.BFloat16 or torch.ScalarType.Float16 => 2,
        torch.ScalarType.Int8 => 1,
        _ => throw new ArgumentException($"dtype {t} is not supported by the collectives; use float32, bfloat16, float16, float64, int32, int64 or int8."),
    };

    public static string Describe => "float32, bfloat16, float16, float64, int32, int64 or int8 (int8 is not reduced)";
}
