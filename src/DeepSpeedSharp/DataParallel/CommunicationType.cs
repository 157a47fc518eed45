using DeepSpeedSharp.Config;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>The dtype gradients travel in: <c>communication_data_type</c> when set, else the gradients' own dtype.</summary>
internal static class CommunicationType
{
    public static ScalarType Resolve(DeepSpeedConfig config, ScalarType gradientType) => config.CommunicationDataType switch
    {
        null => gradientType,
        "fp32" => ScalarType.Float32,
        "fp16" => ScalarType.Float16,
        "bf16" => ScalarType.BFloat16,
        var other => throw new DeepSpeedConfigException($"communication_data_type '{other}' is not supported; use fp32, fp16 or bf16"),
    };
}
