using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

/// <summary>
/// Adam / AdamW with the semantics of DeepSpeed's <c>deepspeed.ops.adam.FusedAdam</c> (the optimizer DeepSpeed builds
/// for <c>"type": "Adam"</c> / <c>"AdamW"</c>), computed on the CPU with in-place TorchSharp tensor operations.
/// </summary>
/// <remarks>
/// <para>Per parameter with a gradient (t = that parameter's step count, bc1 = 1 − β1^t and bc2 = 1 − β2^t when
/// <c>bias_correction</c> is true, else 1), the update of DeepSpeed's <c>multi_tensor_adam</c> kernel:</para>
/// <code>
/// adam_w_mode = false (L2):   g = g + wd·p;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p = p − lr·(m/bc1) / (√(v/bc2) + eps)
/// adam_w_mode = true (AdamW): m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p = p − lr·((m/bc1) / (√(v/bc2) + eps) + wd·p)
/// </code>
/// <para>It is evaluated in the operation order of DeepSpeed's CPU Adam and of <c>torch.optim.Adam/AdamW</c>
/// (p·(1 − lr·wd), then p − (lr/bc1)·m / (√v/√bc2 + eps)), which is the same arithmetic with fewer roundings and one
/// temporary per parameter.</para>
/// <para>Differences from DeepSpeed, all deliberate: the moments of bf16/fp16 parameters are kept in fp32 (FusedAdam keeps
/// them in the parameter's dtype) and the update is computed in fp32 then rounded into the parameter; the step count is
/// per parameter (as in <c>torch.optim.Adam</c>), which equals DeepSpeed's group count whenever every parameter of the
/// group has a gradient; <c>zero_grad()</c> zeroes gradients in place instead of setting them to null
/// (<c>set_grad_none</c>), so gradients that are views of a flat buffer survive. AMSGrad is rejected, as in DeepSpeed.</para>
/// </remarks>
public sealed class FusedAdam : AdamOptimizerBase
{
    /// <summary>Creates the optimizer over one parameter group.</summary>
    /// <param name="parameters">The parameters to optimize.</param>
    /// <param name="lr">Learning rate (DeepSpeed <c>lr</c>, default 1e-3).</param>
    /// <param name="biasCorrection">Whether to divide the moments by 1 − β^t (DeepSpeed <c>bias_correction</c>, default true).</param>
    /// <param name="beta1">β1 (first value of DeepSpeed <c>betas</c>, default 0.9).</param>
    /// <param name="beta2">β2 (second value of DeepSpeed <c>betas</c>, default 0.999).</param>
    /// <param name="eps">Denominator term (DeepSpeed <c>eps</c>, default 1e-8).</param>
    /// <param name="adamWMode">True: decoupled weight decay (AdamW); false: L2 penalty added to the gradient (Adam).
    /// DeepSpeed <c>adam_w_mode</c>, default true.</param>
    /// <param name="weightDecay">Weight decay (DeepSpeed <c>weight_decay</c>, default 0).</param>
    /// <param name="amsgrad">Must be false: FusedAdam does not support AMSGrad.</param>
    /// <param name="lowPrecisionStates">Keep the moments of bf16/fp16 parameters in their dtype instead of fp32 (DeepSpeed's
    /// <c>bf16_optimizer_states</c>); the update is still computed in fp32 and rounded into parameter and moments.</param>
    /// <param name="stochasticRounding">Round the updated values of bf16 parameters stochastically (unbiased) instead of to
    /// nearest, so that updates smaller than half a bf16 step still move the weight on average (bf16 master weights).</param>
    /// <param name="noiseSeed">Seed of the rounding noise; give each rank its own (e.g. the global rank), so that ranks
    /// holding slices of one parameter do not round them with the same noise.</param>
    public FusedAdam(IEnumerable<Parameter> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, bool adamWMode = true, double weightDecay = 0, bool amsgrad = false,
        bool lowPrecisionStates = false, bool stochasticRounding = false, long noiseSeed = 0)
        : this(new[] { new ParamGroup(parameters) }, lr, biasCorrection, beta1, beta2, eps, adamWMode, weightDecay, amsgrad, lowPrecisionStates,
            stochasticRounding, noiseSeed)
    {
    }

    /// <summary>Creates the optimizer over several parameter groups; options a group leaves unset take these defaults.</summary>
    /// <inheritdoc cref="FusedAdam(IEnumerable{Parameter}, double, bool, double, double, double, bool, double, bool, bool, bool, long)"/>
    public FusedAdam(IEnumerable<ParamGroup> parameters, double lr = 1e-3, bool biasCorrection = true, double beta1 = 0.9,
        double beta2 = 0.999, double eps = 1e-8, bool adamWMode = true, double weightDecay = 0, bool amsgrad = false,
        bool lowPrecisionStates = false, bool stochasticRounding = false, long noiseSeed = 0)
        : base(nameof(FusedAdam), lr, biasCorrection, beta1, beta2, eps, adamWMode, weightDecay, amsgrad,
            ", or set torch_adam = true to use torch.optim.Adam/AdamW, which support it")
    {
        LowPrecisionStates = lowPrecisionStates;
        StochasticRounding = stochasticRounding;
        this.noiseSeed = noiseSeed;
        AddParamGroups(parameters);
    }

    /// <summary>Elements of a parameter updated at a time (4 MiB of each fp32 temporary).</summary>
    private const long ChunkElements = 1L << 20;

    /// <summary>True when updated bf16 parameters are rounded stochastically (see the constructor).</summary>
    public bool StochasticRounding { get; }

    /// <summary>The source of the rounding noise (created on the parameters' device at the first step), re-seeded from the
    /// step count and the parameter's index, so a resumed run draws the same noise as an uninterrupted one.</summary>
    private Generator? noise;
    private readonly long noiseSeed;

    /// <summary>The seed of the rounding noise (carried over when the engine rebuilds this optimizer over its partitions).</summary>
    internal long NoiseSeed => noiseSeed;

    /// <summary>Applies one Adam/AdamW update to every parameter that has a gradient.</summary>
    /// <param name="closure">Optional closure re-evaluating the loss; its result is returned.</param>
    public override Tensor step(Func<Tensor>? closure = null)
    {
        return _step<ParamGroup>(group =>
        {
            var o = group.Options;
            double lr = o.LearningRate!.Value, beta1 = o.beta1!.Value, beta2 = o.beta2!.Value;
            double eps = o.eps!.Value, decay = o.weight_decay!.Value;
            bool biasCorrection = o.bias_correction!.Value;
            int index = -1;
            foreach (var p in group.Parameters)
            {
                index++;
                var grad = p.grad;
                if (grad is null) continue;
                var state = GetState(p);
                state.step += 1;
                var bc1 = biasCorrection ? 1 - Math.Pow(beta1, state.step) : 1.0;
                var bc2 = biasCorrection ? 1 - Math.Pow(beta2, state.step) : 1.0;
                var computeType = state.exp_avg.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : state.exp_avg.dtype;
                bool inPlace = p.dtype == computeType && state.exp_avg.dtype == computeType && grad.dtype == computeType;
                if (inPlace && p.numel() <= ChunkElements)
                {
                    Update(p, grad, state.exp_avg, state.exp_avg_sq, lr, beta1, beta2, eps, decay, bc1, bc2, AdamWMode);
                    continue;
                }
                UpdateInChunks(p, grad, state, computeType, lr, beta1, beta2, eps, decay, bc1, bc2, (state.step * 7919 + index) * 65537);
            }
        }, closure!);
    }

    /// <summary>
    /// One chunk at a time, so the step's temporaries (the denominator; fp32 copies of low-precision parameters and
    /// moments) stay small next to the partition it updates. fp32/fp64 tensors are updated in place; the arithmetic is
    /// elementwise, so chunking does not change a bit.
    /// </summary>
    private void UpdateInChunks(Parameter p, Tensor grad, State state, ScalarType computeType, double lr, double beta1,
        double beta2, double eps, double decay, double bc1, double bc2, long noiseBase)
    {
        bool flat = p.is_contiguous() && grad.is_contiguous();
        using var pFlat = flat ? p.view(-1) : p.alias();
        using var gFlat = flat ? grad.view(-1) : grad.alias();
        using var mFlat = flat ? state.exp_avg.view(-1) : state.exp_avg.alias();
        using var vFlat = flat ? state.exp_avg_sq.view(-1) : state.exp_avg_sq.alias();
        long n = flat ? p.numel() : 1, chunk = flat ? ChunkElements : 1;
        for (long start = 0, c = 0; start < n; start += chunk, c++)
        {
            using var scope = NewDisposeScope();
            long count = Math.Min(chunk, n - start);
            Tensor Part(Tensor t) => flat ? t.narrow(0, start, count) : t;
            Tensor Compute(Tensor t) => t.dtype == computeType ? t : t.to(computeType);
            var (pc, mc, vc) = (Part(pFlat), Part(mFlat), Part(vFlat));
            var (work, m, v) = (Compute(pc), Compute(mc), Compute(vc));
            Update(work, Compute(Part(gFlat)), m, v, lr, beta1, beta2, eps, decay, bc1, bc2, AdamWMode);
            if (pc.dtype != computeType)
                pc.copy_(StochasticRounding && pc.dtype == ScalarType.BFloat16 ? RoundStochastically(work, noiseBase + c) : work);
            if (mc.dtype != computeType) mc.copy_(m);
            if (vc.dtype != computeType) vc.copy_(v);
        }
    }

    /// <summary>
    /// fp32 values rounded to bf16 neighbours with probability proportional to closeness (unbiased): with x = m·2^e,
    /// m ∈ [0.5, 1), bf16 keeps 8 significant bits, so its spacing at x is 2^(e−8) and floor(x/spacing + u)·spacing,
    /// u ~ U[0, 1), is exactly representable and equals x in expectation.
    /// </summary>
    private Tensor RoundStochastically(Tensor x, long seed)
    {
        noise ??= new Generator(0x5EED, x.device);
        noise.manual_seed(unchecked(0x5EED + noiseSeed * 1_000_000_007L + seed));
        var (_, exponent) = frexp(x);
        var spacing = exp2(exponent.sub(8).to(ScalarType.Float32));
        return x.div(spacing).add_(rand(x.shape, generator: noise, dtype: ScalarType.Float32, device: x.device)).floor_().mul_(spacing);
    }

    /// <summary>Disposes the optimizer, its moments and the rounding-noise generator.</summary>
    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) noise?.Dispose();
    }

    private static void Update(Tensor p, Tensor g, Tensor m, Tensor v, double lr, double beta1, double beta2, double eps,
        double decay, double bc1, double bc2, bool adamW)
    {
        if (decay != 0)
        {
            if (adamW) p.mul_(1 - lr * decay);
            else g = g.add(p, alpha: decay);
        }
        m.mul_(beta1).add_(g, alpha: 1 - beta1);
        v.mul_(beta2).addcmul_(g, g, value: 1 - beta2);
        var denom = v.sqrt().div_(Math.Sqrt(bc2)).add_(eps);
        p.addcdiv_(m, denom, value: -lr / bc1);
    }

    /// <summary>Accepts any floating-point parameter.</summary>
    protected override void CheckParameter(Parameter parameter, int index, string where)
    {
        if (!parameter.is_floating_point())
            throw new ArgumentException($"{Name} {where}, parameter {index}: only floating-point parameters are supported, got {parameter.dtype}.");
    }
}
