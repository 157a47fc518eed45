using System.Text.Json.Nodes;
using DeepSpeedSharp.Checkpoint;
using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Weights;

/// <summary>Writes tensors as a Hugging Face model directory, the way a test needs one that the engine did not export.</summary>
internal static class HfTestDirectory
{
    /// <summary>
    /// <c>model.safetensors</c> for one shard; otherwise tensor i goes to shard i mod <paramref name="shards"/>, named as
    /// <c>save_pretrained</c> names them, with <c>model.safetensors.index.json</c>. Returns <paramref name="path"/>.
    /// </summary>
    public static string Write(string path, IReadOnlyList<KeyValuePair<string, Tensor>> tensors, int shards)
    {
        Directory.CreateDirectory(path);
        if (shards == 1)
        {
            SafeTensors.Write(Path.Combine(path, HuggingFaceShards.SingleFile), tensors);
            return path;
        }
        var files = HuggingFaceShards.FileNames(shards);
        var map = new JsonObject();
        for (int s = 0; s < shards; s++)
        {
            var mine = tensors.Where((_, i) => i % shards == s).ToList();
            SafeTensors.Write(Path.Combine(path, files[s]), mine);
            foreach (var t in mine) map[t.Key] = files[s];
        }
        long total = tensors.Sum(t => t.Value.numel() * t.Value.element_size());
        var index = new JsonObject { ["metadata"] = new JsonObject { ["total_size"] = total }, ["weight_map"] = map };
        File.WriteAllText(Path.Combine(path, HuggingFaceShards.IndexFile), index.ToJsonString());
        return path;
    }
}
