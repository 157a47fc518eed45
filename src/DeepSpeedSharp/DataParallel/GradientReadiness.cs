using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.DataParallel;

/// <summary>
/// Learns, during backward, which parameters' gradients are final — without tensor hooks, which TorchSharp lacks.
/// A forward pre-hook on every module that owns parameters records the order modules run in and wraps the module's
/// input in an identity autograd node (<see cref="GradTap"/>). That node's backward runs once the module has produced
/// its input gradient; by then every module that ran <i>after</i> it in forward has finished its backward, so the
/// gradients of parameters used only by those modules are final. Parameters whose first use is not seen this way
/// (inputs that need no gradient, functional use) become ready when backward ends (<see cref="FinishPass"/>).
/// Used for <c>overlap_comm</c>: buckets are reduced as soon as all their parameters are ready.
/// </summary>
internal sealed class GradientReadiness : IDisposable
{
    private readonly List<Action> removers = new();
    private readonly int[][] ownerParams;          // per owner module: indices of its parameters in the layout
    private readonly List<int> ownerAtPosition = new();
    private readonly int[] firstUse;               // per parameter: earliest forward position this micro-step
    private readonly bool[] ready;
    private readonly Action<IReadOnlyList<int>> onReady;
    private readonly List<Tensor> passedOn = new(); // the gradients the taps returned in this backward pass
    private bool armed;

    public GradientReadiness(nn.Module model, IReadOnlyList<Parameter> parameters, Action<IReadOnlyList<int>> onReady)
    {
        this.onReady = onReady;
        var index = parameters.Select((p, i) => (p.Handle, i)).ToDictionary(x => x.Handle, x => x.i);
        firstUse = new int[parameters.Count];
        ready = new bool[parameters.Count];
        var owners = new List<int[]>();
        foreach (var (_, module) in ModuleOwners.Of(model))
        {
            if (module is not nn.Module<Tensor, Tensor> hookable) continue;
            int owner = owners.Count;
            owners.Add(module.parameters().Where(p => index.ContainsKey(p.Handle)).Select(p => index[p.Handle]).Distinct().ToArray());
            var handle = hookable.register_forward_pre_hook((_, input) => BeforeForward(owner, input));
            removers.Add(handle.remove);
        }
        ownerParams = owners.ToArray();
        Reset();
    }

    /// <summary>Gradients the taps passed on in this backward pass and not yet released (<see cref="FinishPass"/> releases them).</summary>
    internal int PassedOnCount => passedOn.Count;

    /// <summary>Watch the next forward/backward pass (the engine arms it only when the pass will be reduced).</summary>
    public void Arm()
    {
        Reset();
        armed = true;
    }

    private Tensor BeforeForward(int owner, Tensor input)
    {
        if (!armed) return null!; // null keeps the input
        int position = ownerAtPosition.Count;
        ownerAtPosition.Add(owner);
        foreach (int p in ownerParams[owner]) firstUse[p] = Math.Min(firstUse[p], position);
        if (!is_grad_enabled() || !input.requires_grad) return null!;
        return GradTap.apply(input, new GradTap.Callback(() => Completed(position), passedOn.Add));
    }

    /// <summary>The backward of the module that ran at <paramref name="position"/> produced its input gradient.</summary>
    private void Completed(int position)
    {
        var newly = new List<int>();
        for (int p = 0; p < firstUse.Length; p++)
        {
            if (!ready[p] && firstUse[p] > position && firstUse[p] != int.MaxValue)
            {
                ready[p] = true;
                newly.Add(p);
            }
        }
        if (newly.Count > 0) onReady(newly);
    }

    /// <summary>Backward is over: every remaining parameter is ready. Resets for the next micro-step.</summary>
    public void FinishPass()
    {
        ReleasePassedOn();
        var rest = Enumerable.Range(0, ready.Length).Where(p => !ready[p]).ToList();
        Reset();
        if (rest.Count > 0) onReady(rest);
    }

    /// <summary>
    /// Disposes the gradients the taps passed on, now that autograd holds its own references: TorchSharp keeps a custom
    /// function's backward results until its graph node is finalized, so without this every tap's input gradient would
    /// stay in memory until a garbage collection (hundreds of MiB over a few dozen steps).
    /// </summary>
    private void ReleasePassedOn()
    {
        foreach (var g in passedOn) g.Dispose();
        passedOn.Clear();
    }

    private void Reset()
    {
        armed = false;
        ownerAtPosition.Clear();
        Array.Fill(firstUse, int.MaxValue);
        Array.Fill(ready, false);
    }

    public void Dispose()
    {
        ReleasePassedOn();
        foreach (var remove in removers) remove();
    }
}

/// <summary>An identity autograd function whose backward calls back before passing the gradient on.</summary>
internal sealed class GradTap : autograd.SingleTensorFunction<GradTap>
{
    public override string Name => "GradTap";

    /// <summary>Plain data for the autograd context: what to call in backward, and who disposes the gradient passed on.</summary>
    internal sealed record Callback(Action Invoke, Action<Tensor> PassedOn);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("callback", vars[1]);
        return ((Tensor)vars[0]).view_as((Tensor)vars[0]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var callback = (Callback)ctx.get_data("callback");
        callback.Invoke();
        callback.PassedOn(gradOutput);
        return new List<Tensor> { gradOutput, null! };
    }
}
