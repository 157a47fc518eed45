using TorchSharp;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>The dtypes the collectives accept, and their element sizes.</summary>
internal static class CommDType
{
    public static bool IsSupported(torch.ScalarType t) => t is torch.ScalarType.Float32 or torch.ScalarType.BFloat16
        or torch.ScalarType.Float16 or torch.ScalarType.Float64 or torch.ScalarType.Int32 or torch.ScalarType.Int64;

    public static bool IsFloating(torch.ScalarType t) => t is torch.ScalarType.Float32 or torch.ScalarType.BFloat16
        or torch.ScalarType.Float16 or torch.ScalarType.Float64;

    public static int ElementSize(torch.ScalarType t) => t switch
    {
        torch.ScalarType.Float32 or torch.ScalarType.Int32 => 4,
        torch.ScalarType.Float64 or torch.ScalarType.Int64 => 8,
        torch.ScalarType.BFloat16 or torch.ScalarType.Float16 => 2,
        _ => throw new ArgumentException($"dtype {t} is not supported by the collectives; use float32, bfloat16, float16, float64, int32 or int64."),
    };

    public static string Describe => "float32, bfloat16, float16, float64, int32 or int64";
}
