using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Config.Keys;

/// <summary>
/// Every DeepSpeed config key DeepSpeedSharp accepts, classified in one place: <see cref="KeyEffectKind.Implemented"/>
/// (the engine reads it), <see cref="KeyEffectKind.NoEffect"/> (accepted, changes nothing here, and says why) or
/// <see cref="KeyEffectKind.Rejected"/> (only its default is accepted). The config reader consults this table for
/// every key it reads; <c>docs/config.md</c>'s key table is generated from it (<see cref="ToMarkdown"/>), and a test
/// fails when a key the schema accepts is missing here.
/// </summary>
public static partial class ConfigKeyTable
{
    /// <summary>All rows, in table order.</summary>
    public static IReadOnlyList<ConfigKeyEffect> All { get; } = TopLevel().Concat(Zero()).Concat(Sections()).ToList();

    private static readonly Lazy<IReadOnlyDictionary<string, ConfigKeyEffect>> ByKey = new(() =>
    {
        var map = new Dictionary<string, ConfigKeyEffect>(StringComparer.Ordinal);
        foreach (var e in All)
            if (!map.TryAdd(e.Key, e)) throw new InvalidOperationException($"the config key table lists '{e.Key}' twice");
        return map;
    });

    /// <summary>The row of a canonical dotted key path, or null when the table does not list it.</summary>
    public static ConfigKeyEffect? Find(string key) => ByKey.Value.TryGetValue(key, out var e) ? e : null;

    /// <summary>The last path segment of every row directly under <paramref name="section"/> ("" = top level).</summary>
    internal static IEnumerable<string> ChildrenOf(string section) =>
        ByKey.Value.Keys.Where(k => section.Length == 0 ? !k.Contains('.') : k.StartsWith(section + ".", StringComparison.Ordinal)
                                                                             && !k[(section.Length + 1)..].Contains('.'))
            .Select(k => section.Length == 0 ? k : k[(section.Length + 1)..]);

    /// <summary>The key table of <c>docs/config.md</c>: one Markdown row per key, grouped by section, with the range
    /// each numeric key accepts (declared on its schema definition).</summary>
    public static string ToMarkdown()
    {
        var sb = new StringBuilder();
        var ranges = DeepSpeedConfig.SchemaKeys().Where(k => k.Range != null).DistinctBy(k => k.Path).ToDictionary(k => k.Path, k => k.Range!.Describe());
        sb.AppendLine("| Key | Effect here | Accepted values | Notes |");
        sb.AppendLine("|---|---|---|---|");
        foreach (var e in All)
        {
            var kind = e.Kind switch
            {
                KeyEffectKind.Implemented => "implemented",
                KeyEffectKind.NoEffect => "**no effect**",
                _ => "**rejected** unless default",
            };
            var accepts = ranges.TryGetValue(e.Key, out var r) ? r : "";
            sb.AppendLine($"| `{e.Key}` | {kind} | {accepts} | {e.Note.Replace("|", "\\|", StringComparison.Ordinal)} |");
        }
        var counts = All.GroupBy(e => e.Kind).ToDictionary(g => g.Key, g => g.Count());
        sb.AppendLine();
        sb.AppendLine($"{All.Count} keys: {counts.GetValueOrDefault(KeyEffectKind.Implemented)} implemented, " +
                      $"{counts.GetValueOrDefault(KeyEffectKind.NoEffect)} without effect here, {counts.GetValueOrDefault(KeyEffectKind.Rejected)} rejected unless at their default.");
        return sb.ToString();
    }

    private static ConfigKeyEffect Done(string key, string note) => new(key, KeyEffectKind.Implemented, note);

    private static ConfigKeyEffect None(string key, string reason) => new(key, KeyEffectKind.NoEffect, reason);

    private static ConfigKeyEffect Reject(string key, string reason, Func<JsonNode?, bool>? when = null) =>
        new(key, KeyEffectKind.Rejected, reason) { RejectWhen = when };

    /// <summary>A number above <paramref name="limit"/>.</summary>
    private static Func<JsonNode?, bool> Above(double limit) =>
        n => n?.GetValueKind() == JsonValueKind.Number && n.GetValue<double>() > limit;

    private static IEnumerable<ConfigKeyEffect> TopLevel() =>
    [
        Done("train_batch_size", "batch-size arithmetic (train = micro × accumulation × data-parallel size)"),
        Done("train_micro_batch_size_per_gpu", "batch-size arithmetic; the pipeline engine's micro-batch"),
        Done("gradient_accumulation_steps", "accumulation boundary of Backward/Step; pipeline micro-batches per TrainBatch"),
        Done("steps_per_print", "period of the progress line and of the monitors' timer events"),
        Done("wall_clock_breakdown", "forward/backward/step timers in the progress report and monitors"),
        Done("memory_breakdown", "a memory line at each progress report: model-state bytes (parameters, gradients, optimizer) and RSS"),
        Done("gradient_clipping", "global-norm clipping over all ranks (0 = off)"),
        Done("prescale_gradients", "divide gradients before the reduction instead of after"),
        Done("gradient_predivide_factor", "divide before the reduction by this factor, after it by world size / factor"),
        Done("gradient_allreduce_op", "\"mean\" or \"sum\" gradient reduction"),
        Done("communication_data_type", "dtype of gradient reductions"),
        Done("zero_allow_untested_optimizer", "allows a client optimizer with ZeRO"),
        Done("zero_force_ds_cpu_optimizer", "with ZeRO-Offload, require the CPU Adam"),
        Done("dataloader_drop_last", "the training-data loader (trainingData:, DeepSpeedIO) drops the last incomplete batch"),
        Reject("managed_gradient_accumulation", "caller-managed accumulation boundaries are not implemented; remove it or set true",
            n => n?.GetValueKind() == JsonValueKind.False),
        Reject("sequence_parallel_size", "Ulysses sequence parallelism is not implemented (Megatron-style sequence parallelism is: see docs/tensor-parallel.md); remove it or set 1",
            Above(1)),
        Reject("amp", "Apex AMP is not available in .NET; use bf16 or fp16"),
        Reject("curriculum_learning", "curriculum learning is not implemented; remove it or disable it"),
        Reject("progressive_layer_drop", "progressive layer drop is not implemented; remove it or disable it"),
        Reject("compression_training", "compression training is not implemented; remove it or disable it"),
        Reject("weight_quantization", "weight quantization is not implemented; remove it or disable it"),
        Reject("quantize_training", "quantized training is not implemented; remove it or disable it"),
        Reject("sparse_attention", "sparse attention is not implemented; remove it or disable it"),
        Reject("data_efficiency", "data efficiency (curriculum / random-LTD) is not implemented; remove it or disable it"),
        Reject("sparse_gradients", "sparse (CSR) gradients are not implemented; remove it or set false"),
        Reject("tensor_parallel", "AutoTP is not implemented; use the TensorParallel layers (docs/tensor-parallel.md)"),
        Reject("compile", "torch.compile / DeepCompile do not exist in TorchSharp; remove it or disable it"),
        Reject("torch_autocast", "torch autocast is not implemented; use bf16 or fp16"),
        Reject("hybrid_engine", "the hybrid (RLHF) engine is not implemented; remove it or disable it"),
        Reject("eigenvalue", "eigenvalue computation is not implemented; remove it or disable it"),
        Reject("expert_parallel", "mixture-of-experts parallelism is not implemented; remove it or disable it"),
        Reject("nebula", "the Nebula checkpoint engine is not implemented; checkpoints use the built-in writer"),
        Reject("datastates", "the DataStates checkpoint engine is not implemented; checkpoints use the built-in writer"),
        Reject("checkpoint_engine", "alternative checkpoint engines are not implemented; checkpoints use the built-in writer"),
        None("autotuning", "the autotuner launches Python experiments; tune by hand with `dss bench train`"),
        None("dump_state", "DeepSpeed prints its engine state with it; the start-up log here already lists the resolved config"),
        None("log_level", "the log level of DeepSpeed's Python logger; DeepSpeedSharp logs on rank 0 without levels"),
        None("vocabulary_size", "only read by DeepSpeed's data-efficiency sampler, which is rejected"),
        None("disable_allgather", "a legacy ZeRO-1 switch DeepSpeed no longer reads"),
        None("seq_parallel_communication_data_type", "a dtype for Ulysses sequence-parallel all-to-all, which is rejected"),
        None("data_parallel_size", "derived from the world size and the topology, as DeepSpeed does"),
        None("use_data_before_expert_parallelism", "an expert-parallel rank-order choice; expert parallelism is rejected"),
        None("graph_harvesting", "a HPU graph-capture switch; no graph capture in TorchSharp"),
    ];
}
