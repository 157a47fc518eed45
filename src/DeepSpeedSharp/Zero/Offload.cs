using DeepSpeedSharp.Config;
using DeepSpeedSharp.Optim.CpuAdam;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// ZeRO-Offload decisions: where the fp32 master partitions, their gradients and the optimizer state live
/// (<c>offload_optimizer.device: "cpu"</c>, and for stage 3 also <c>offload_param.device: "cpu"</c>: host memory),
/// and DeepSpeed's rule that an offloaded optimizer must be the CPU Adam (<c>zero_force_ds_cpu_optimizer</c>).
/// On a CPU-only machine the copies are host-to-host, but the same device-agnostic path runs.
/// </summary>
internal static class Offload
{
    /// <summary>The device for master partitions and optimizer state: the CPU when offloading, else the parameters' device.</summary>
    public static Device? MasterDevice(DeepSpeedConfig config)
    {
        var zero = config.ZeroOptimization;
        bool host = zero.OffloadOptimizer.Enabled || (zero.Stage == 3 && zero.OffloadParam.Enabled);
        return host ? CPU : null;
    }

    /// <summary>
    /// Host buffers that exchange data with an accelerator are page-locked when the config asks for it
    /// (<c>pin_memory</c>) and the compute device has pinned memory (CUDA); on a CPU-only run there is nothing to pin.
    /// </summary>
    public static Tensor PinIfUseful(Tensor hostTensor, Device computeDevice, DeepSpeedConfig config)
    {
        var zero = config.ZeroOptimization;
        bool pin = zero.OffloadOptimizer.Enabled ? zero.OffloadOptimizer.PinMemory : zero.OffloadParam.Enabled && zero.OffloadParam.PinMemory;
        if (!pin || computeDevice.type != DeviceType.CUDA || hostTensor.device.type != DeviceType.CPU) return hostTensor;
        var pinned = hostTensor.pin_memory().DetachFromDisposeScope();
        hostTensor.Dispose();
        return pinned;
    }

    /// <summary>True when the optimizer step runs on the host.</summary>
    public static bool OptimizerOffloaded(DeepSpeedConfig config) => config.ZeroOptimization.OffloadOptimizer.Enabled;

    /// <summary>DeepSpeed's check: with ZeRO-Offload, a client optimizer that is not the CPU Adam is rejected unless
    /// <c>zero_force_ds_cpu_optimizer</c> is false. With 16-bit master weights the CPU Adam kernel (which updates fp32
    /// masters) does not apply, and the offloaded step runs <c>FusedAdam</c> on the host.</summary>
    public static void CheckOptimizer(DeepSpeedConfig config, optim.Optimizer optimizer, ScalarType masterDType)
    {
        if (!OptimizerOffloaded(config) || optimizer is DeepSpeedCpuAdam || !config.ZeroForceDsCpuOptimizer) return;
        if (masterDType != ScalarType.Float32) return;
        throw new DeepSpeedConfigException(
            $"zero_optimization.offload_optimizer runs the optimizer on the CPU, which needs DeepSpeedCpuAdam, not {optimizer.GetType().Name}; " +
            "use an \"optimizer\" section of type Adam/AdamW (it becomes DeepSpeedCpuAdam), pass a factory that builds DeepSpeedCpuAdam, " +
            "or set \"zero_force_ds_cpu_optimizer\": false to run this optimizer on host tensors anyway");
    }
}
