using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Schema;

/// <summary>
/// The <c>scheduler</c> section: <c>type</c> (exact DeepSpeed name) selects the parameter table of
/// <c>deepspeed/runtime/lr_schedules.py</c> that validates <c>params</c>.
/// </summary>
internal static class SchedulerSchemas
{
    public static readonly string[] Types = ["WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest"];

    private static Field<SchedulerConfig> Of<V>(string key, ValueKind<V> kind, Func<SchedulerConfig, V> get, Func<SchedulerConfig, V, SchedulerConfig> set) =>
        Fields<SchedulerConfig>.Of(key, kind, get, set);

    private static readonly Field<SchedulerConfig> WarmupMinLr = Of("warmup_min_lr", Kinds.Double(min: 0), c => c.WarmupMinLr, (c, v) => c with { WarmupMinLr = v });
    private static readonly Field<SchedulerConfig> WarmupMaxLr = Of("warmup_max_lr", Kinds.OptionalDouble(min: 0), c => c.WarmupMaxLr, (c, v) => c with { WarmupMaxLr = v });
    private static readonly Field<SchedulerConfig> WarmupNumSteps = Of("warmup_num_steps", Kinds.Int(min: 0), c => c.WarmupNumSteps, (c, v) => c with { WarmupNumSteps = v });
    private static readonly Field<SchedulerConfig> WarmupType = Of("warmup_type", Kinds.OneOf("log", "linear"), c => c.WarmupType, (c, v) => c with { WarmupType = v });
    private static readonly Field<SchedulerConfig> TotalNumSteps = Of("total_num_steps", Kinds.OptionalInt(min: 1), c => c.TotalNumSteps, (c, v) => c with { TotalNumSteps = v });
    private static readonly Field<SchedulerConfig> LastBatchIteration = Of("last_batch_iteration", Kinds.Int(min: -1), c => c.LastBatchIteration, (c, v) => c with { LastBatchIteration = v });

    private static SectionSchema<SchedulerConfig> Table(string type, params Field<SchedulerConfig>[] fields) =>
        new SectionSchema<SchedulerConfig>(() => new() { Type = type, WarmupMaxLr = type == "WarmupDecayLR" ? 0.001 : null }).Add(fields).Add(LastBatchIteration);

    private static readonly IReadOnlyDictionary<string, SectionSchema<SchedulerConfig>> ByType = new Dictionary<string, SectionSchema<SchedulerConfig>>(StringComparer.Ordinal)
    {
        ["WarmupLR"] = Table("WarmupLR", WarmupMinLr, WarmupMaxLr, WarmupNumSteps, WarmupType),
        ["WarmupDecayLR"] = Table("WarmupDecayLR", TotalNumSteps, WarmupMinLr, WarmupMaxLr, WarmupNumSteps, WarmupType),
        ["WarmupCosineLR"] = Table("WarmupCosineLR", TotalNumSteps,
            Of("warmup_min_ratio", Kinds.Double(min: 0), c => c.WarmupMinRatio, (c, v) => c with { WarmupMinRatio = v }),
            WarmupNumSteps,
            Of("cos_min_ratio", Kinds.Double(min: 0), c => c.CosMinRatio, (c, v) => c with { CosMinRatio = v }),
            WarmupType),
        ["OneCycle"] = Table("OneCycle",
            Of("cycle_min_lr", Kinds.Double(min: 0), c => c.CycleMinLr, (c, v) => c with { CycleMinLr = v }),
            Of("cycle_max_lr", Kinds.Double(min: 0), c => c.CycleMaxLr, (c, v) => c with { CycleMaxLr = v }),
            Of("decay_lr_rate", Kinds.Double(min: 0), c => c.DecayLrRate, (c, v) => c with { DecayLrRate = v }),
            Of("cycle_first_step_size", Kinds.Int(min: 1), c => c.CycleFirstStepSize, (c, v) => c with { CycleFirstStepSize = v }),
            Of("cycle_second_step_size", Kinds.OptionalInt(min: 1), c => c.CycleSecondStepSize, (c, v) => c with { CycleSecondStepSize = v }),
            Of("cycle_first_stair_count", Kinds.Int(min: 0), c => c.CycleFirstStairCount, (c, v) => c with { CycleFirstStairCount = v }),
            Of("cycle_second_stair_count", Kinds.OptionalInt(min: 0), c => c.CycleSecondStairCount, (c, v) => c with { CycleSecondStairCount = v }),
            Of("decay_step_size", Kinds.Int(min: 0), c => c.DecayStepSize, (c, v) => c with { DecayStepSize = v }),
            Of("cycle_momentum", Kinds.Bool, c => c.CycleMomentum, (c, v) => c with { CycleMomentum = v }),
            Of("cycle_min_mom", Kinds.Double(min: 0), c => c.CycleMinMom, (c, v) => c with { CycleMinMom = v }),
            Of("cycle_max_mom", Kinds.Double(min: 0), c => c.CycleMaxMom, (c, v) => c with { CycleMaxMom = v }),
            Of("decay_mom_rate", Kinds.Double(min: 0), c => c.DecayMomRate, (c, v) => c with { DecayMomRate = v })),
        ["LRRangeTest"] = Table("LRRangeTest",
            Of("lr_range_test_min_lr", Kinds.Double(min: 0), c => c.LrRangeTestMinLr, (c, v) => c with { LrRangeTestMinLr = v }),
            Of("lr_range_test_step_size", Kinds.Int(min: 1), c => c.LrRangeTestStepSize, (c, v) => c with { LrRangeTestStepSize = v }),
            Of("lr_range_test_step_rate", Kinds.Double(min: 0), c => c.LrRangeTestStepRate, (c, v) => c with { LrRangeTestStepRate = v }),
            Of("lr_range_test_staircase", Kinds.Bool, c => c.LrRangeTestStaircase, (c, v) => c with { LrRangeTestStaircase = v })),
    };

    /// <summary>Reads the whole <c>scheduler</c> object; null when absent or <c>type</c> is null.</summary>
    public static SchedulerConfig? Read(JsonNode? node, ReadContext ctx, string path)
    {
        var envelope = TypeAndParams.Read(node, ctx, path);
        if (envelope is null) return null;
        if (envelope.Type is null) return null;
        if (!ByType.TryGetValue(envelope.Type, out var table))
        {
            var close = Types.FirstOrDefault(t => string.Equals(t, envelope.Type, StringComparison.OrdinalIgnoreCase))
                        ?? KeySuggester.Suggest(envelope.Type, Types);
            throw new DeepSpeedConfigException($"{path}.type '{envelope.Type}' is not a scheduler DeepSpeedSharp implements; supported: {string.Join(", ", Types)}"
                                               + (close != null ? $"; did you mean '{close}'?" : ""));
        }
        var paramsPath = ReadContext.Join(path, "params");
        var c = table.Read(envelope.Params ?? new JsonObject(), ctx, paramsPath);
        if (c.Type is "WarmupDecayLR" or "WarmupCosineLR" && c.TotalNumSteps is null && !ctx.AnyFailed(paramsPath + ".total_num_steps"))
        {
            var wasAuto = ctx.AutoKeys.Contains(paramsPath + ".total_num_steps");
            throw new DeepSpeedConfigException($"{paramsPath}.total_num_steps is required for {c.Type}"
                + (wasAuto ? " and cannot be \"auto\" (nothing fills it in here); write the total number of optimizer steps" : "; write the total number of optimizer steps"));
        }
        if (c.Type == "OneCycle")
        {
            var p = envelope.Params as JsonObject;
            foreach (var required in new[] { "cycle_min_lr", "cycle_max_lr" })
                if (p is null || !p.ContainsKey(required) || ctx.AutoKeys.Contains(paramsPath + "." + required))
                    throw new DeepSpeedConfigException($"{paramsPath}.{required} is required for OneCycle; write a number");
            if (c.CycleMaxLr < c.CycleMinLr && !ctx.AnyFailed(paramsPath + ".cycle_min_lr", paramsPath + ".cycle_max_lr"))
                throw new DeepSpeedConfigException($"{paramsPath}: cycle_max_lr ({c.CycleMaxLr}) must be ≥ cycle_min_lr ({c.CycleMinLr})");
        }
        return c;
    }

    /// <summary>The dotted paths of <c>type</c> and of every scheduler's parameters under <paramref name="path"/>.</summary>
    public static IEnumerable<SchemaKey> Keys(string path) =>
        new[] { new SchemaKey(ReadContext.Join(path, "type"), null) }
            .Concat(ByType.Values.SelectMany(t => t.Keys(ReadContext.Join(path, "params")))).DistinctBy(k => k.Path);

    public static JsonNode? Write(SchedulerConfig? c) => c is null ? null : new JsonObject
    {
        ["type"] = c.Type,
        ["params"] = ByType[c.Type].Write(c),
    };
}
