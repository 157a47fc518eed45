using System.Runtime.InteropServices;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim.CpuAdam;

/// <summary>
/// DeepSpeed's <c>deepspeed.ops.adam.DeepSpeedCPUAdam</c>: Adam/AdamW for fp32 parameters held in CPU memory (the
/// ZeRO-Offload master weights), each step one fused pass of <see cref="CpuAdamKernel"/> over the parameter, its gradient
/// and both moments, split over <see cref="Threads"/> threads. <see cref="Step(Parameter, Tensor?)"/> also writes a
/// bf16/fp16 copy of the updated parameter in the same pass.
/// </summary>
/// <remarks>
/// <para>The math is <see cref="CpuAdamKernel"/>'s (torch's Adam/AdamW operation order with fused multiply-adds);
/// results do not depend on the thread count. The step count is kept per parameter, as DeepSpeed does.</para>
/// <para>Parameters must be contiguous fp32 CPU tensors (gradients that are not contiguous are copied first).
/// AMSGrad is rejected, as in DeepSpeed. <c>zero_grad()</c> zeroes gradients in place.</para>
/// </remarks>
public sealed class DeepSpeedCpuAdam : AdamOptimizerBase
{
    /// <summary>Creates the optimizer over one parameter group.</summary>
    /// <param name="parameters">fp32 CPU parameters to optimize.</param>
    /// <param name="lr">Learning rate (DeepSpeed <c>lr</c>, default 1e-3).</param>
    /// <param name="biasCorrection">Divide the moments by 1 − β^t (DeepSpeed <c>bias_correction</c>, default true).</param>
    /// <param name="beta1">β1 (first value of DeepSpeed <c>betas</c>, default 0.9).</param>
    /// <param name="beta2">β2 (second value of DeepSpeed <c>betas</c>, default 0.999).</param>
    /// <param name="eps">Denominator term (DeepSpeed <c>eps</c>, default 1e-8).</param>
    /// <param name="weightDecay">Weight decay (DeepSpeed <c>weight_decay</c>, default 0).</param>
    /// <param name="amsgrad">Must be false: DeepSpeed's CPU Adam does not support AMSGrad.</param>
    /// <param name="adamWMode">True: decoupled weight decay (AdamW); false: L2 (Adam). DeepSpeed <c>adamw_mode</c>, default true.</param>
    /// <param name="fp32OptimizerStates">DeepSpeed <c>fp32_optimizer_states</c> (default true): the moments' dtype is fp32
    /// when true and the parameter's dtype when false; both are fp32 here because the parameters are.</param>
    /// <param name="threads">Threads per step (DeepSpeed uses all OpenMP threads); 0 = <see cref="Environment.ProcessorCount"/>.</param>
    public DeepSpeedCpuAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool adamWMode = true,
        bool fp32OptimizerStates = true, int threads = 0)
        : this(new[] { new ParamGroup(parameters) }, lr, biasCorrection, beta1, beta2, eps, weightDecay, amsgrad, adamWMode,
            fp32OptimizerStates, threads)
    {
    }

    /// <summary>Creates the optimizer over several parameter groups; options a group leaves unset take these defaults.</summary>
    /// <inheritdoc cref="DeepSpeedCpuAdam(IEnumerable{Parameter}, double, bool, double, double, double, double, bool, bool, bool, int)"/>
    public DeepSpeedCpuAdam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0, bool amsgrad = false, bool adamWMode = true,
        bool fp32OptimizerStates = true, int threads = 0)
        : base(nameof(DeepSpeedCpuAdam), lr, biasCorrection, beta1, beta2, eps, adamWMode, weightDecay, amsgrad, "")
    {
        if (threads < 0)
            throw new ArgumentOutOfRangeException(nameof(threads), threads, "DeepSpeedCpuAdam: threads must be >= 0 (0 = all cores).");
        Fp32OptimizerStates = fp32OptimizerStates;
        Threads = threads == 0 ? Environment.ProcessorCount : threads;
        AddParamGroups(parameters);
    }

    /// <summary>DeepSpeed <c>fp32_optimizer_states</c>, as given (the moments are fp32 in both cases).</summary>
    public bool Fp32OptimizerStates { get; }

    /// <summary>Elements updated per kernel call: a span addresses at most 2 GiB, so larger tensors go in chunks
    /// (2^28 elements = 1 GiB of fp32 per stream; smaller in tests).</summary>
    internal long ChunkElements { get; set; } = 1L << 28;

    /// <summary>The number of threads each step uses.</summary>
    public int Threads { get; }

    /// <summary>Applies one Adam/AdamW update to every parameter that has a gradient.</summary>
    /// <param name="closure">Optional closure re-evaluating the loss; its result is returned.</param>
    public override Tensor step(Func<Tensor>? closure = null) =>
        _step<ParamGroup>(group =>
        {
            foreach (var p in group.Parameters) Update(group, p, null);
        }, closure!);

    /// <summary>
    /// Applies one update to every parameter that has a gradient and writes each updated parameter into its bf16/fp16
    /// copy in the same pass (DeepSpeed's <c>step(fp16_param_groups=...)</c>).
    /// </summary>
    /// <param name="lowPrecisionGroups">Per parameter group, per parameter (in order): a contiguous CPU BFloat16 or
    /// Float16 tensor with the parameter's number of elements, or null for no copy.</param>
    public void StepWithCopies(IReadOnlyList<IReadOnlyList<Tensor?>> lowPrecisionGroups)
    {
        ArgumentNullException.ThrowIfNull(lowPrecisionGroups);
        if (lowPrecisionGroups.Count != _parameter_groups.Count)
            throw new ArgumentException(
                $"DeepSpeedCpuAdam: got low-precision copies for {lowPrecisionGroups.Count} parameter groups, the optimizer has {_parameter_groups.Count}.");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        for (var gi = 0; gi < _parameter_groups.Count; gi++)
        {
            var group = (ParamGroup)_parameter_groups[gi];
            var ps = group.Parameters as IList<Parameter> ?? group.Parameters.ToList();
            var copies = lowPrecisionGroups[gi];
            if (copies is null || copies.Count != ps.Count)
                throw new ArgumentException(
                    $"DeepSpeedCpuAdam: parameter group {gi} has {ps.Count} parameters but {copies?.Count.ToString() ?? "null"} low-precision copies were given.");
            for (var i = 0; i < ps.Count; i++) Update(group, ps[i], copies[i]);
        }
    }

    /// <summary>Updates one parameter (if it has a gradient) and writes the result into <paramref name="lowPrecisionCopy"/>
    /// (a contiguous CPU BFloat16 or Float16 tensor with as many elements) in the same pass.</summary>
    /// <param name="parameter">A parameter managed by this optimizer.</param>
    /// <param name="lowPrecisionCopy">The copy to write, or null.</param>
    public void Step(Parameter parameter, Tensor? lowPrecisionCopy)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        var group = GroupOf(parameter);
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        Update(group, parameter, lowPrecisionCopy);
    }

    private void Update(ParamGroup group, Parameter p, Tensor? lowPrecisionCopy)
    {
        var grad = p.grad;
        if (grad is null) return;
        var state = GetState(p);
        var o = group.Options;
        var args = new AdamStepArgs(o.LearningRate!.Value, o.beta1!.Value, o.beta2!.Value, o.eps!.Value, o.weight_decay!.Value,
            state.step + 1, o.bias_correction!.Value, AdamWMode);
        args.Validate();
        if (!grad.shape.SequenceEqual(p.shape))
            throw new ArgumentException($"DeepSpeedCpuAdam: gradient shape [{string.Join(",", grad.shape)}] differs from the parameter's [{string.Join(",", p.shape)}].");
        using var contiguousGrad = grad.is_contiguous() ? null : grad.contiguous();
        if (lowPrecisionCopy is not null && lowPrecisionCopy.numel() != p.numel())
            throw new ArgumentException(
                $"DeepSpeedCpuAdam: the low-precision copy has {lowPrecisionCopy.numel()} elements, the parameter {p.numel()}.");
        // Spans address at most 2 GiB, so a larger partition (over ~536 M fp32 elements) is updated chunk by chunk;
        // the kernel is elementwise, so the result does not depend on the chunking.
        long n = p.numel();
        using var pFlat = p.view(-1);
        using var gFlat = (contiguousGrad ?? grad).view(-1);
        using var mFlat = state.exp_avg.view(-1);
        using var vFlat = state.exp_avg_sq.view(-1);
        using var lowFlat = lowPrecisionCopy?.view(-1);
        for (long start = 0; start < n; start += ChunkElements)
        {
            long count = Math.Min(ChunkElements, n - start);
            using var pc = pFlat.narrow(0, start, count);
            using var gc = gFlat.narrow(0, start, count);
            using var mc = mFlat.narrow(0, start, count);
            using var vc = vFlat.narrow(0, start, count);
            using var lc = lowFlat?.narrow(0, start, count);
            Span<ushort> bf16 = default;
            Span<Half> fp16 = default;
            if (lc is not null)
            {
                var halves = TensorMemory.Halves(lc, "the low-precision copy");
                if (lc.dtype == ScalarType.BFloat16) bf16 = halves;
                else fp16 = MemoryMarshal.Cast<ushort, Half>(halves);
            }
            CpuAdamKernel.StepParallel(TensorMemory.Floats(pc, "the parameter"), TensorMemory.Floats(gc, "the gradient"),
                TensorMemory.Floats(mc, "exp_avg"), TensorMemory.Floats(vc, "exp_avg_sq"), args, Threads, bf16, fp16);
        }
        state.step += 1;
    }

    /// <summary>Accepts contiguous fp32 CPU tensors only (the fp32 master weights).</summary>
    protected override void CheckParameter(Parameter parameter, int index, string where)
    {
        if (parameter.dtype != ScalarType.Float32 || parameter.device_type != DeviceType.CPU || !parameter.is_contiguous())
            throw new ArgumentException(
                $"DeepSpeedCpuAdam {where}, parameter {index}: needs a contiguous fp32 CPU tensor (the fp32 master weights), got " +
                $"{parameter.dtype} on {parameter.device}{(parameter.is_contiguous() ? "" : ", not contiguous")}. Keep an fp32 master " +
                "copy on the CPU and pass the bf16/fp16 model weights as the low-precision copy to Step.");
    }
}
