using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace DeepSpeedSharp.Samples.Llama.Model;

/// <summary>
/// The sample's model shape as Hugging Face's <c>LlamaConfig</c> (<c>config.json</c> of a <c>LlamaForCausalLM</c>
/// directory): <see cref="Write"/> for the directories the sample and <c>dss checkpoint export --format hf</c> produce,
/// <see cref="Read"/> for <c>--hf-model</c>. A setting this model does not have (tied embeddings, biases, RoPE scaling,
/// another activation) is refused in one line naming the key, its value and the file.
/// </summary>
public static class HfLlamaConfig
{
    /// <summary>The file name inside a Hugging Face model directory.</summary>
    public const string FileName = Checkpoint.HuggingFaceExport.ConfigFile;

    /// <summary>Writes <paramref name="config"/> to <paramref name="path"/> (<paramref name="dtype"/>: "float32", "bfloat16" or "float16").</summary>
    public static void Write(LlamaConfig config, string path, string dtype = "float32")
    {
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray("LlamaForCausalLM"),
            ["model_type"] = "llama",
            ["hidden_size"] = config.DModel,
            ["intermediate_size"] = config.FfnHiddenSize,
            ["num_attention_heads"] = config.Heads,
            ["num_hidden_layers"] = config.Layers,
            ["num_key_value_heads"] = config.KvHeads,
            ["head_dim"] = config.HeadDim,
            ["vocab_size"] = config.Vocab,
            ["max_position_embeddings"] = config.Seq,
            ["rms_norm_eps"] = config.NormEps,
            ["rope_theta"] = config.RopeTheta,
            ["rope_scaling"] = null,
            ["hidden_act"] = "silu",
            ["attention_bias"] = false,
            ["mlp_bias"] = false,
            ["attention_dropout"] = config.Dropout,
            ["tie_word_embeddings"] = false,
            ["initializer_range"] = 0.02,
            ["torch_dtype"] = dtype,
        };
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        File.Move(tmp, path, overwrite: true);
    }

    /// <summary>
    /// The shape in <paramref name="directory"/>'s <c>config.json</c>; <paramref name="seq"/> and
    /// <paramref name="dropout"/> come from the command line (the sequence length must not exceed
    /// <c>max_position_embeddings</c>).
    /// </summary>
    public static LlamaConfig Read(string directory, int seq, double dropout)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"--hf-model: '{directory}' has no {FileName} (a Hugging Face LlamaConfig is needed)", path);
        JsonObject json;
        try { json = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new JsonException("not a JSON object"); }
        catch (JsonException e) { throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}"); }

        string? type = String(json, path, "model_type");
        if (type is not null && type != "llama") throw Refuse(path, "model_type", $"\"{type}\"", "\"llama\"");
        Expect(json, path, "hidden_act", "silu");
        Expect(json, path, "tie_word_embeddings", false);
        Expect(json, path, "attention_bias", false);
        Expect(json, path, "mlp_bias", false);
        if (json["rope_scaling"] is { } scaling) throw Refuse(path, "rope_scaling", scaling.ToJsonString(), "null (this model has plain RoPE)");

        int heads = Int(json, path, "num_attention_heads")!.Value, d = Int(json, path, "hidden_size")!.Value;
        int? headDim = Int(json, path, "head_dim", required: false);
        if (headDim is { } hd && hd * heads != d) throw Refuse(path, "head_dim", hd.ToString(CultureInfo.InvariantCulture), $"hidden_size / num_attention_heads = {d / heads}");
        int positions = Int(json, path, "max_position_embeddings", required: false) ?? int.MaxValue;
        if (seq > positions) throw new ArgumentException($"--seq {seq} is longer than max_position_embeddings {positions} in '{path}'");
        var config = new LlamaConfig(
            Vocab: Int(json, path, "vocab_size")!.Value,
            DModel: d,
            Layers: Int(json, path, "num_hidden_layers")!.Value,
            Heads: heads,
            KvHeads: Int(json, path, "num_key_value_heads", required: false) ?? heads,
            FfnHidden: Int(json, path, "intermediate_size")!.Value,
            Seq: seq,
            Dropout: dropout,
            RopeTheta: Double(json, path, "rope_theta") ?? 10000.0,
            NormEps: Double(json, path, "rms_norm_eps") ?? 1e-6); // transformers' LlamaConfig default
        config.Validate();
        return config;
    }

    private static ArgumentException Refuse(string path, string key, string value, string accepted) =>
        new($"'{path}': \"{key}\": {value} is not supported by the sample's LLaMA; it needs {accepted}");

    private static void Expect(JsonObject json, string path, string key, string expected)
    {
        if (String(json, path, key) is { } value && value != expected) throw Refuse(path, key, $"\"{value}\"", $"\"{expected}\"");
    }

    private static void Expect(JsonObject json, string path, string key, bool expected)
    {
        if (json[key] is not { } node) return;
        if (node.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False) || node.GetValue<bool>() != expected)
            throw Refuse(path, key, node.ToJsonString(), expected ? "true" : "false");
    }

    private static string? String(JsonObject json, string path, string key) => json[key] switch
    {
        null => null,
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        var other => throw new InvalidDataException($"'{path}': \"{key}\" must be a string, got {other.ToJsonString()}"),
    };

    private static int? Int(JsonObject json, string path, string key, bool required = true)
    {
        if (json[key] is not { } node)
            return required ? throw new InvalidDataException($"'{path}' has no \"{key}\" (a Hugging Face LlamaConfig has it)") : null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var i) && i > 0) return i;
        throw new InvalidDataException($"'{path}': \"{key}\" must be a positive integer, got {node.ToJsonString()}");
    }

    private static double? Double(JsonObject json, string path, string key)
    {
        if (json[key] is not { } node) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.GetValue<double>() > 0) return v.GetValue<double>();
        throw new InvalidDataException($"'{path}': \"{key}\" must be a positive number, got {node.ToJsonString()}");
    }
}
