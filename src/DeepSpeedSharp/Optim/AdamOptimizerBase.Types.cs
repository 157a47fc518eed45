using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Optim;

public abstract partial class AdamOptimizerBase
{
    /// <summary>Hyper-parameters of one Adam parameter group (null = take the optimizer's default).</summary>
    /// <remarks>Field names follow TorchSharp's optimizers (and DeepSpeed's JSON keys).</remarks>
    public sealed class Options : OptimizerOptions
    {
        /// <summary>β1.</summary>
        public double? beta1;
        /// <summary>β2.</summary>
        public double? beta2;
        /// <summary>Denominator term.</summary>
        public double? eps;
        /// <summary>Weight decay (decoupled or L2 depending on <see cref="AdamWMode"/>).</summary>
        public double? weight_decay;
        /// <summary>Whether the moments are bias-corrected.</summary>
        public bool? bias_correction;

        /// <inheritdoc/>
        public override void LoadStateDict(OptimizerOptions source)
        {
            base.LoadStateDict(source);
            var o = source as Options ?? throw new ArgumentException(
                $"expected Adam options ({typeof(Options).FullName}), got {source?.GetType().Name ?? "null"}.", nameof(source));
            beta1 = o.beta1;
            beta2 = o.beta2;
            eps = o.eps;
            weight_decay = o.weight_decay;
            bias_correction = o.bias_correction;
        }

        /// <inheritdoc/>
        public override void LoadStateDict(BinaryReader reader)
        {
            base.LoadStateDict(reader);
            beta1 = reader.ReadDouble();
            beta2 = reader.ReadDouble();
            eps = reader.ReadDouble();
            weight_decay = reader.ReadDouble();
            bias_correction = reader.ReadBoolean();
        }

        /// <inheritdoc/>
        public override void SaveStateDict(BinaryWriter writer)
        {
            base.SaveStateDict(writer);
            writer.Write(beta1!.Value);
            writer.Write(beta2!.Value);
            writer.Write(eps!.Value);
            writer.Write(weight_decay!.Value);
            writer.Write(bias_correction!.Value);
        }
    }

    /// <summary>An Adam parameter group (of <see cref="FusedAdam"/> or <see cref="CpuAdam.DeepSpeedCpuAdam"/>): parameters plus options overriding the optimizer's defaults.</summary>
    public sealed class ParamGroup : ParamGroup<Options>, optim.IBetas
    {
        /// <summary>A group whose options all default to the optimizer's.</summary>
        public ParamGroup(IEnumerable<Parameter> parameters) : base(parameters, new Options())
        {
        }

        /// <summary>A group with the given options (unset ones default to the optimizer's).</summary>
        public ParamGroup(IEnumerable<Parameter> parameters, Options options) : base(parameters, options)
        {
        }

        /// <summary>(β1, β2) of this group; OneCycle's momentum cycling writes it.</summary>
        public (double, double) Betas
        {
            get => (Options.beta1!.Value, Options.beta2!.Value);
            set { Options.beta1 = value.Item1; Options.beta2 = value.Item2; }
        }
    }

    /// <summary>Per-parameter state: step count and the two moments.</summary>
    public sealed class State : OptimizerState, IDisposable
    {
        /// <summary>State for <paramref name="parameter"/>; <see cref="Initialize"/> allocates the moments.</summary>
        public State(Parameter parameter) : base(parameter)
        {
        }

        /// <summary>Number of updates applied.</summary>
        public long step;
        /// <summary>First moment.</summary>
        public Tensor exp_avg = null!;
        /// <summary>Second moment.</summary>
        public Tensor exp_avg_sq = null!;

        /// <summary>Keep the moments in the parameter's dtype even when it is bf16/fp16 (<c>bf16_optimizer_states</c>).</summary>
        public bool InParameterDType { get; init; }

        /// <summary>Allocates zeroed moments: fp32 for bf16/fp16 parameters (unless <see cref="InParameterDType"/>),
        /// otherwise the parameter's dtype (so always fp32 for DeepSpeedCpuAdam, whose parameters are fp32 master weights).</summary>
        public override void Initialize(OptimizerOptions options)
        {
            var stateType = !InParameterDType && _parameter.dtype is ScalarType.BFloat16 or ScalarType.Float16 ? ScalarType.Float32 : _parameter.dtype;
            step = 0;
            exp_avg?.Dispose();
            exp_avg_sq?.Dispose();
            // Owned by the optimizer, not by whatever dispose scope the optimizer happens to be built in.
            exp_avg = zeros(_parameter.shape, stateType, _parameter.device).DetachFromDisposeScope();
            exp_avg_sq = zeros(_parameter.shape, stateType, _parameter.device).DetachFromDisposeScope();
        }

        /// <summary>Releases the moment tensors.</summary>
        public void Dispose()
        {
            exp_avg?.Dispose();
            exp_avg_sq?.Dispose();
        }

        /// <inheritdoc/>
        public override void to(Device device)
        {
            exp_avg = Move(exp_avg, device);
            exp_avg_sq = Move(exp_avg_sq, device);
        }

        private static Tensor Move(Tensor t, Device device)
        {
            var moved = t.to(device);
            if (!ReferenceEquals(moved, t)) t.Dispose();
            return moved;
        }

        /// <inheritdoc/>
        public override void SaveStateDict(BinaryWriter writer)
        {
            writer.Write(step);
            exp_avg.Save(writer);
            exp_avg_sq.Save(writer);
        }

        /// <inheritdoc/>
        public override void LoadStateDict(BinaryReader reader)
        {
            step = reader.ReadInt64();
            exp_avg.Load(reader);
            exp_avg_sq.Load(reader);
        }

        /// <summary>Copies the source's values into this state's tensors (the source keeps ownership of its own).</summary>
        public override void LoadStateDict(OptimizerState source)
        {
            var s = source as State ?? throw new ArgumentException(
                $"expected Adam state ({typeof(State).FullName}), got {source?.GetType().Name ?? "null"}.", nameof(source));
            if (!s.exp_avg.shape.SequenceEqual(exp_avg.shape))
                throw new ArgumentException(
                    $"Adam state shape mismatch: loading [{string.Join(",", s.exp_avg.shape)}] into [{string.Join(",", exp_avg.shape)}].");
            step = s.step;
            using (no_grad())
            {
                exp_avg.copy_(s.exp_avg);
                exp_avg_sq.copy_(s.exp_avg_sq);
            }
        }

        /// <inheritdoc/>
        public override bool ApproximatelyEquals(OptimizerState other) =>
            other is State s && s.step == step && s.exp_avg.allclose(exp_avg) && s.exp_avg_sq.allclose(exp_avg_sq);
    }
}
