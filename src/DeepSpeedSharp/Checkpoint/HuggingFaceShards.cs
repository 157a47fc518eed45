using System.Globalization;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// How a Hugging Face model directory splits its weights, as transformers' <c>save_pretrained</c> does: tensors in order,
/// a new shard when the next tensor would take the current one past the size limit, a tensor larger than the limit in a
/// shard of its own; files <c>model.safetensors</c> for one shard, else <c>model-00001-of-0000N.safetensors</c> ….
/// </summary>
public static partial class HuggingFaceShards
{
    /// <summary>transformers' default <c>max_shard_size</c>, "5GB".</summary>
    public const long DefaultMaxShardBytes = 5_000_000_000;

    /// <summary>What <see cref="ParseSize"/> accepts, for error messages.</summary>
    public const string SizeRequirement = "a size such as 5GB, 500MB, 100KB, 2GiB or a number of bytes (1000)";

    /// <summary>The single-shard file name.</summary>
    public const string SingleFile = "model.safetensors";

    /// <summary>The index file of a sharded directory.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>
    /// Bytes of a size written as transformers writes <c>max_shard_size</c>: a number with an optional unit, KB / MB /
    /// GB / TB (powers of 1000) or KiB / MiB / GiB / TiB (powers of 1024), case-insensitive (<c>5GB</c>, <c>500MB</c>,
    /// <c>1.5GB</c>, <c>1000</c>); null when the text is none of these or is below one byte.
    /// </summary>
    public static long? ParseSize(string text)
    {
        var m = SizePattern().Match(text.Trim());
        if (!m.Success || !decimal.TryParse(m.Groups[1].Value, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number)) return null;
        var prefix = m.Groups[2].Value.ToUpperInvariant();
        int power = prefix.Length == 0 ? 0 : "KMGT".IndexOf(prefix[0]) + 1;
        decimal unit = 1, step = prefix.EndsWith('I') ? 1024 : 1000;
        for (int i = 0; i < power; i++) unit *= step;
        if (number > long.MaxValue / unit) return null;
        var bytes = decimal.Floor(number * unit);
        return bytes >= 1 ? (long)bytes : null;
    }

    /// <summary>
    /// Splits tensors of <paramref name="bytes"/> (in order) into shards of at most <paramref name="maxShardBytes"/>
    /// each (a larger tensor alone); returns each shard's tensor indices. No tensors give one empty shard.
    /// </summary>
    public static List<List<int>> Plan(IReadOnlyList<long> bytes, long maxShardBytes)
    {
        if (maxShardBytes < 1) throw new ArgumentOutOfRangeException(nameof(maxShardBytes), $"the shard size must be at least 1 byte, got {maxShardBytes}");
        var shards = new List<List<int>>();
        List<int>? current = null;
        long size = 0;
        for (int i = 0; i < bytes.Count; i++)
        {
            if (current == null || size + bytes[i] > maxShardBytes && current.Count > 0)
            {
                current = [];
                shards.Add(current);
                size = 0;
            }
            current.Add(i);
            size += bytes[i];
        }
        return shards.Count > 0 ? shards : [[]];
    }

    /// <summary>The file names of <paramref name="count"/> shards.</summary>
    public static IReadOnlyList<string> FileNames(int count) =>
        count == 1
            ? [SingleFile]
            : Enumerable.Range(1, count).Select(i => string.Create(CultureInfo.InvariantCulture, $"model-{i:D5}-of-{count:D5}.safetensors")).ToList();

    [GeneratedRegex(@"^(\d+(?:\.\d+)?)\s*((?:[KMGT]i?)?)B?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex SizePattern();
}
