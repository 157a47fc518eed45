using System.Diagnostics;
using System.Reflection;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Profiling;

/// <summary>
/// DeepSpeed's flops profiler (<c>deepspeed.profiling.flops_profiler.FlopsProfiler</c>): between
/// <see cref="StartProfile"/> and <see cref="StopProfile"/> it hooks every module's forward (TorchSharp runs hooks only
/// through <c>module.call</c>) to measure per-module latency and count MACs/FLOPs by module type: Linear, LayerNorm,
/// Embedding, Dropout, GELU, ReLU, SiLU, Tanh, Sigmoid and Softmax are built in (see <see cref="FlopsFormulas"/>).
/// Work a module does with functional calls (a matmul inside an attention block, <c>F.gelu</c>) is invisible to hooks:
/// register a counter for that module type with <see cref="AddCounter{TModule}"/>. Modules without a counter count 0
/// of their own work; their children are still counted.
/// </summary>
public sealed class FlopsProfiler : IDisposable
{
    private readonly nn.Module model;
    private readonly Dictionary<Type, Func<nn.Module, Tensor, Tensor, OpCost>> counters = new();
    private readonly List<Action> removers = [];
    private ModuleProfile? root;

    /// <summary>Profiles <paramref name="model"/> (nothing is hooked until <see cref="StartProfile"/>).</summary>
    public FlopsProfiler(nn.Module model)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        AddCounter<Linear>((m, x, _) => FlopsFormulas.Linear(x.numel(), m.out_features));
        AddCounter<LayerNorm>((m, x, _) => FlopsFormulas.LayerNorm(x.numel(), m.elementwise_affine));
        AddCounter<Embedding>((_, _, _) => OpCost.Zero);
        AddCounter<Dropout>((_, _, _) => OpCost.Zero);
        AddCounter<GELU>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
        AddCounter<ReLU>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
        AddCounter<SiLU>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
        AddCounter<Tanh>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
        AddCounter<Sigmoid>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
        AddCounter<Softmax>((_, _, y) => FlopsFormulas.Elementwise(y.numel()));
    }

    /// <summary>True between <see cref="StartProfile"/> and <see cref="StopProfile"/>.</summary>
    public bool Started { get; private set; }

    /// <summary>
    /// Counts the module's own work (not its children's) for every module of type <typeparamref name="TModule"/>
    /// (or a subclass), from its input and output. Replaces an earlier counter of the same type.
    /// </summary>
    public void AddCounter<TModule>(Func<TModule, Tensor, Tensor, OpCost> counter) where TModule : nn.Module
    {
        ArgumentNullException.ThrowIfNull(counter);
        counters[typeof(TModule)] = (m, x, y) => counter((TModule)m, x, y);
    }

    /// <summary>Resets the counts and hooks every module.</summary>
    public void StartProfile()
    {
        if (Started) return;
        root ??= Build(model, "", 0);
        root.Reset();
        foreach (var (module, node) in Pairs(model, root)) Hook(module, node);
        Started = true;
    }

    /// <summary>Removes the hooks; the measurements stay readable.</summary>
    public void StopProfile()
    {
        foreach (var remove in removers) remove();
        removers.Clear();
        Started = false;
    }

    /// <summary>Removes the hooks and forgets the measurements.</summary>
    public void EndProfile()
    {
        StopProfile();
        root?.Reset();
    }

    /// <summary>The measured tree (after <see cref="StartProfile"/>).</summary>
    public ModuleProfile GetProfile() => root ?? throw new InvalidOperationException("the flops profiler has not been started: call StartProfile() and run a forward pass");

    /// <summary>Total forward MACs measured.</summary>
    public long GetTotalMacs() => GetProfile().Macs;

    /// <summary>Total forward FLOPs measured.</summary>
    public long GetTotalFlops() => GetProfile().Flops;

    /// <summary>Number of parameter elements of the model.</summary>
    public long GetTotalParams() => GetProfile().Parameters;

    /// <summary>Total forward latency of the model.</summary>
    public TimeSpan GetTotalDuration() => GetProfile().Latency;

    /// <summary>Removes the hooks.</summary>
    public void Dispose() => StopProfile();

    private static ModuleProfile Build(nn.Module module, string name, int depth)
    {
        long parameters = module.parameters().Sum(p => p.numel());
        string typeName = module.GetType().Name;
        int tick = typeName.IndexOf('`');
        var node = new ModuleProfile(name, tick > 0 ? typeName[..tick] : typeName, depth, parameters);
        foreach (var (childName, child) in module.named_children())
            node.children.Add(Build(child, name.Length == 0 ? childName : name + "." + childName, depth + 1));
        return node;
    }

    private static IEnumerable<(nn.Module, ModuleProfile)> Pairs(nn.Module module, ModuleProfile node)
    {
        yield return (module, node);
        int i = 0;
        foreach (var (_, child) in module.named_children())
            foreach (var pair in Pairs(child, node.children[i++])) yield return pair;
    }

    private void Hook(nn.Module module, ModuleProfile node)
    {
        if (module is nn.Module<Tensor, Tensor> typed)
        {
            var counter = CounterFor(module.GetType());
            var pre = typed.register_forward_pre_hook((_, _) => { node.starts.Push(Stopwatch.GetTimestamp()); return null!; });
            var post = typed.register_forward_hook((m, x, y) =>
            {
                Finish(node);
                if (counter != null) node.OwnCost += counter(m, x, y);
                return null!;
            });
            node.MeasuredLatency = TimeSpan.Zero;
            removers.Add(pre.remove);
            removers.Add(post.remove);
            return;
        }
        // Modules with other signatures: time them through the input-less hooks, if the type has them.
        var t = module.GetType();
        var preMethod = t.GetMethod("register_forward_pre_hook", [typeof(Action<nn.Module>)]);
        var postMethod = t.GetMethod("register_forward_hook", [typeof(Action<nn.Module>)]);
        if (preMethod == null || postMethod == null) return; // containers such as ModuleList are never called
        Action<nn.Module> onPre = _ => node.starts.Push(Stopwatch.GetTimestamp());
        Action<nn.Module> onPost = _ => Finish(node);
        node.MeasuredLatency = TimeSpan.Zero;
        removers.Add(Remover(preMethod.Invoke(module, [onPre])));
        removers.Add(Remover(postMethod.Invoke(module, [onPost])));
    }

    private static void Finish(ModuleProfile node)
    {
        node.Calls++;
        if (node.starts.Count > 0)
            node.MeasuredLatency = (node.MeasuredLatency ?? TimeSpan.Zero) + Stopwatch.GetElapsedTime(node.starts.Pop());
    }

    private static Action Remover(object? handle)
    {
        var remove = handle?.GetType().GetMethod("remove", BindingFlags.Public | BindingFlags.Instance, Type.EmptyTypes)
            ?? throw new InvalidOperationException("TorchSharp hook handle without remove()");
        return () => remove.Invoke(handle, null);
    }

    private Func<nn.Module, Tensor, Tensor, OpCost>? CounterFor(Type type)
    {
        for (var t = type; t != null; t = t.BaseType)
            if (counters.TryGetValue(t, out var c)) return c;
        return null;
    }
}
