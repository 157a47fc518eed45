namespace DeepSpeedSharp.Native;

/// <summary>
/// What this machine's CPU offers that decides training speed on it: its model, its vector extensions (AVX2,
/// AVX-512) and whether it computes bf16 natively (AVX-512-BF16 or AMX-BF16). Without native bf16, libtorch emulates
/// bf16 matrix products, which run about 10× slower than fp32 (measured on an AVX2-only machine: 798 vs 7,807 tokens/s
/// on the GPT sample). Read from <c>/proc/cpuinfo</c> (Linux); unknown elsewhere.
/// </summary>
/// <param name="Model">The CPU's model name, or null.</param>
/// <param name="Flags">The CPU's feature flags (empty when unknown).</param>
public sealed record CpuFeatures(string? Model, IReadOnlySet<string> Flags)
{
    /// <summary>True when the flags are known.</summary>
    public bool Known => Flags.Count > 0;

    /// <summary>True when the CPU computes bf16 natively (AVX-512-BF16 or AMX-BF16).</summary>
    public bool NativeBf16 => Flags.Contains("avx512_bf16") || Flags.Contains("amx_bf16");

    /// <summary>"AVX2, AVX-512F; bf16: native (AVX-512-BF16)", or "unknown".</summary>
    public string Describe()
    {
        if (!Known) return "unknown";
        var vector = new[] { ("avx2", "AVX2"), ("avx512f", "AVX-512F") }.Where(v => Flags.Contains(v.Item1)).Select(v => v.Item2).ToList();
        var bf16 = new[] { ("avx512_bf16", "AVX-512-BF16"), ("amx_bf16", "AMX-BF16") }.Where(v => Flags.Contains(v.Item1)).Select(v => v.Item2).ToList();
        return $"{(vector.Count > 0 ? string.Join(", ", vector) : "no AVX2")}; bf16: " +
               (bf16.Count > 0 ? $"native ({string.Join(", ", bf16)})" : "emulated (no AVX-512-BF16 or AMX: bf16 matrix products run ~10× slower than fp32)");
    }

    /// <summary>The features of this machine's CPU.</summary>
    public static CpuFeatures OfThisMachine()
    {
        try { return File.Exists("/proc/cpuinfo") ? Parse(File.ReadAllText("/proc/cpuinfo")) : new CpuFeatures(null, new HashSet<string>()); }
        catch (IOException) { return new CpuFeatures(null, new HashSet<string>()); }
    }

    /// <summary>Reads the first processor's <c>model name</c> and <c>flags</c> lines of a <c>/proc/cpuinfo</c> text.</summary>
    public static CpuFeatures Parse(string cpuinfo)
    {
        var lines = cpuinfo.Split('\n');
        string? Field(string name) => lines.FirstOrDefault(l => l.StartsWith(name, StringComparison.Ordinal) && l.Contains(':')) is { } l
            ? l[(l.IndexOf(':') + 1)..].Trim() : null;
        var flags = (Field("flags") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        return new CpuFeatures(Field("model name"), flags);
    }
}
