using System.Text.Json;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Config.Schema;

namespace DeepSpeedSharp.Config;

/// <summary>
/// Rewrites deprecated shapes to current ones before the schemas read the config, with a warning each, as DeepSpeed
/// does: top-level <c>bfloat16</c> → <c>bf16</c>; <c>"zero_optimization": true|false</c> → stage 1 / 0;
/// <c>cpu_offload</c> → <c>offload_optimizer {device: cpu}</c>; <c>cpu_offload_param</c> → <c>offload_param {device: cpu}</c>;
/// <c>cpu_offload_use_pin_memory</c> → <c>pin_memory</c> of both offload sections. (Plain renames such as
/// <c>stage3_gather_fp16_weights_on_model_save</c> and <c>bf16.check_overflow</c> are deprecated names in the schemas.)
/// </summary>
internal static class LegacyMigrations
{
    public static void Apply(JsonObject root, ReadContext ctx)
    {
        if (root.TryGetPropertyValue("bfloat16", out var bfloat16))
        {
            if (root.ContainsKey("bf16"))
                throw new DeepSpeedConfigException("both 'bf16' and its old name 'bfloat16' are given at the top level; keep only 'bf16'");
            root.Remove("bfloat16");
            root["bf16"] = bfloat16;
            ctx.Warnings.Add("'bfloat16' is deprecated; use 'bf16' (value migrated)");
        }

        if (!root.TryGetPropertyValue("zero_optimization", out var zeroNode)) return;
        if (zeroNode?.GetValueKind() is JsonValueKind.True or JsonValueKind.False)
        {
            var enabled = zeroNode.GetValueKind() == JsonValueKind.True;
            root["zero_optimization"] = new JsonObject { ["stage"] = enabled ? 1 : 0 };
            ctx.Warnings.Add($"'\"zero_optimization\": {(enabled ? "true" : "false")}' is deprecated; use '\"zero_optimization\": {{\"stage\": {(enabled ? 1 : 0)}}}' (value migrated)");
            return;
        }
        if (zeroNode is not JsonObject zero) return; // the schema reports the type error

        MigrateOffloadFlag(zero, ctx, "cpu_offload", "offload_optimizer");
        MigrateOffloadFlag(zero, ctx, "cpu_offload_param", "offload_param");

        if (zero.TryGetPropertyValue("cpu_offload_use_pin_memory", out var pinNode))
        {
            var pin = Kinds.ReadBool(pinNode, "zero_optimization.cpu_offload_use_pin_memory");
            zero.Remove("cpu_offload_use_pin_memory");
            foreach (var section in new[] { "offload_optimizer", "offload_param" })
                if (zero[section] is JsonObject o && !o.ContainsKey("pin_memory"))
                    o["pin_memory"] = pin;
            ctx.Warnings.Add("'zero_optimization.cpu_offload_use_pin_memory' is deprecated; use 'pin_memory' in offload_optimizer / offload_param (value migrated)");
        }
    }

    private static void MigrateOffloadFlag(JsonObject zero, ReadContext ctx, string oldKey, string newKey)
    {
        if (!zero.TryGetPropertyValue(oldKey, out var node)) return;
        var path = "zero_optimization." + oldKey;
        var on = node is not null && Kinds.ReadBool(node, path);
        zero.Remove(oldKey);
        if (on)
        {
            if (zero.ContainsKey(newKey))
                throw new DeepSpeedConfigException($"both '{path}' (deprecated) and 'zero_optimization.{newKey}' are given; keep only '{newKey}'");
            zero[newKey] = new JsonObject { ["device"] = "cpu" };
        }
        ctx.Warnings.Add($"'{path}' is deprecated; use 'zero_optimization.{newKey}' {{\"device\": \"{(on ? "cpu" : "none")}\"}} (value migrated)");
    }
}
