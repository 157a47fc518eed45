using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// The <c>optimizer</c> section: <c>type</c> selects which parameter table validates <c>params</c>
/// (engine <c>_configure_basic_optimizer</c> semantics for Adam/AdamW; torch semantics for SGD).
/// </summary>
internal static class OptimizerSchemas
{
    /// <summary>DeepSpeed's other built-in optimizer names: recognised so the error can say "not supported" rather than "unknown".</summary>
    private static readonly string[] OtherDeepSpeedTypes =
        ["lamb", "onebitadam", "zerooneadam", "onebitlamb", "adagrad", "lion", "muon", "muadam", "muadamw", "musgd", "fusedadam", "cpuadam", "adam8bit"];

    private static Field<OptimizerConfig> Of<V>(string key, ValueKind<V> kind, Func<OptimizerConfig, V> get, Func<OptimizerConfig, V, OptimizerConfig> set) =>
        Fields<OptimizerConfig>.Of(key, kind, get, set);

    private static readonly Field<OptimizerConfig> Lr = Of("lr", Kinds.Double(min: 0), c => c.Lr, (c, v) => c with { Lr = v });
    private static readonly Field<OptimizerConfig> WeightDecay = Of("weight_decay", Kinds.Double(min: 0), c => c.WeightDecay, (c, v) => c with { WeightDecay = v });

    private static readonly NumericRange BetaRange = NumericRange.Real(0, 1);
    private static readonly NumericRange MaxGradNormRange = NumericRange.Real(0, double.PositiveInfinity);

    private static readonly Field<OptimizerConfig> Betas = new CustomField<OptimizerConfig>("betas", (c, n, _, p) =>
    {
        if (n is not JsonArray { Count: 2 } a) throw Kinds.Expected(p, "a list of two numbers [beta1, beta2]", n);
        var b1 = Kinds.ReadDouble(a[0], p + "[0]", BetaRange);
        var b2 = Kinds.ReadDouble(a[1], p + "[1]", BetaRange);
        return c with { Beta1 = b1, Beta2 = b2 };
    }, c => new JsonArray(JsonValue.Create(c.Beta1), JsonValue.Create(c.Beta2)));

    private static readonly Field<OptimizerConfig> MaxGradNorm = new CustomField<OptimizerConfig>("max_grad_norm", (c, n, ctx, p) =>
    {
        var v = Kinds.ReadDouble(n, p, MaxGradNormRange);
        if (v > 0) ctx.Warnings.Add($"'{p}' ({v}) is ignored, as DeepSpeed does; use the top-level 'gradient_clipping' to clip gradients");
        return c;
    }, _ => null).WithRange(MaxGradNormRange);

    public static readonly SectionSchema<OptimizerConfig> AdamParams = new SectionSchema<OptimizerConfig>(() => new())
        .Add(Lr, Betas,
            Of("eps", Kinds.Double(min: 0), c => c.Eps, (c, v) => c with { Eps = v }),
            WeightDecay,
            Of("bias_correction", Kinds.Bool, c => c.BiasCorrection, (c, v) => c with { BiasCorrection = v }),
            Of("amsgrad", Kinds.Bool, c => c.Amsgrad, (c, v) => c with { Amsgrad = v }),
            Of("adam_w_mode", Kinds.Bool, c => c.AdamWMode, (c, v) => c with { AdamWMode = v }),
            Of("torch_adam", Kinds.Bool, c => c.TorchAdam, (c, v) => c with { TorchAdam = v }),
            MaxGradNorm);

    public static readonly SectionSchema<OptimizerConfig> SgdParams = new SectionSchema<OptimizerConfig>(() => new() { Type = "sgd" })
        .Add(Lr, WeightDecay,
            Of("momentum", Kinds.Double(min: 0), c => c.Momentum, (c, v) => c with { Momentum = v }),
            Of("dampening", Kinds.Double(min: 0), c => c.Dampening, (c, v) => c with { Dampening = v }),
            Of("nesterov", Kinds.Bool, c => c.Nesterov, (c, v) => c with { Nesterov = v }),
            MaxGradNorm);

    /// <summary>Reads the whole <c>optimizer</c> object; null when absent, JSON null, or <c>type</c> is null.</summary>
    public static OptimizerConfig? Read(JsonNode? node, ReadContext ctx, string path)
    {
        var envelope = TypeAndParams.Read(node, ctx, path);
        if (envelope is null) return null;
        if (envelope.Type is null)
        {
            if (ctx.AnyFailed(ReadContext.Join(path, "type"))) return null; // already reported
            if (envelope.Params is JsonObject { Count: > 0 })
                throw new DeepSpeedConfigException($"{path}.type is missing but {path}.params is given; set type to 'Adam', 'AdamW' or 'SGD'");
            return null;
        }
        var type = envelope.Type.ToLowerInvariant();
        var paramsPath = ReadContext.Join(path, "params");
        var paramsNode = envelope.Params ?? new JsonObject();
        switch (type)
        {
            case "adam":
            case "adamw":
                var c = AdamParams.Read(paramsNode, ctx, paramsPath) with { Type = type };
                if (type == "adamw")
                {
                    if (!c.AdamWMode) ctx.Warnings.Add($"'{paramsPath}.adam_w_mode' = false is ignored for type AdamW (DeepSpeed always uses decoupled weight decay for AdamW)");
                    c = c with { AdamWMode = true };
                }
                var wdGiven = paramsNode is JsonObject po && po.ContainsKey("weight_decay") && !ctx.AutoKeys.Contains(paramsPath + ".weight_decay");
                if (c.TorchAdam && c.AdamWMode && !wdGiven) c = c with { WeightDecay = 0.01 }; // torch.optim.AdamW's default
                return c;
            case "sgd":
                return SgdParams.Read(paramsNode, ctx, paramsPath) with { Type = "sgd" };
            case "auto":
                throw new DeepSpeedConfigException($"{path}.type is \"auto\"; write the optimizer type ('Adam', 'AdamW' or 'SGD')");
            default:
                var why = OtherDeepSpeedTypes.Contains(type) ? "a DeepSpeed optimizer DeepSpeedSharp does not implement" : "not an optimizer DeepSpeedSharp knows";
                throw new DeepSpeedConfigException($"{path}.type '{envelope.Type}' is {why}; supported: 'Adam', 'AdamW', 'SGD' (or pass your own optimizer to DeepSpeed.Initialize)");
        }
    }

    /// <summary>The dotted paths of <c>type</c> and of every Adam and SGD parameter under <paramref name="path"/>.</summary>
    public static IEnumerable<SchemaKey> Keys(string path) =>
        new[] { new SchemaKey(ReadContext.Join(path, "type"), null) }
            .Concat(AdamParams.Keys(ReadContext.Join(path, "params")))
            .Concat(SgdParams.Keys(ReadContext.Join(path, "params"))).DistinctBy(k => k.Path);

    public static JsonNode? Write(OptimizerConfig? c) => c is null ? null : new JsonObject
    {
        ["type"] = c.Type,
        ["params"] = (c.Type == "sgd" ? SgdParams : AdamParams).Write(c),
    };
}
