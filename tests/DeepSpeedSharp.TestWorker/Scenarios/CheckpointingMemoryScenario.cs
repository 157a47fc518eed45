using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;
using Ckpt = DeepSpeedSharp.DeepSpeed.Checkpointing;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `checkpointing-memory EVERY SEQ BATCH LAYERS DMODEL STEPS`: builds the sample GPT (Gpt.dll next to this worker, loaded
/// by reflection: the worker does not reference the sample) with dropout 0.1 and activation checkpointing every EVERY
/// blocks (0 = off), and measures in this fresh process: the resident memory a forward leaves behind after malloc_trim
/// (what the graph keeps for backward; measured on the second step, after the first warmed the kernels), the bytes
/// checkpointing keeps, the peak RSS, and the median forward+backward time (first step excluded).
/// Prints one line of key=value pairs.
/// </summary>
public sealed class CheckpointingMemoryScenario : IScenario
{
    public string Name => "checkpointing-memory";

    public int Run(string[] args)
    {
        if (args.Length != 6)
        {
            Console.Error.WriteLine("usage: checkpointing-memory EVERY SEQ BATCH LAYERS DMODEL STEPS");
            return 2;
        }
        int[] a = args.Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        int every = a[0], seq = a[1], batch = a[2], layers = a[3], dModel = a[4], steps = a[5];
        const int vocab = 512;
        if (int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), out int threads) && threads > 0) set_num_threads(threads);

        var asm = Assembly.LoadFrom(Path.Combine(AppContext.BaseDirectory, "Gpt.dll"));
        var configType = asm.GetType("DeepSpeedSharp.Samples.Gpt.Model.GptConfig", throwOnError: true)!;
        var modelType = asm.GetType("DeepSpeedSharp.Samples.Gpt.Model.GptModel", throwOnError: true)!;
        manual_seed(1);
        var config = Activator.CreateInstance(configType, vocab, dModel, layers, Math.Max(1, dModel / 64), seq, 0.1)!;
        using var model = (nn.Module<Tensor, Tensor>)Activator.CreateInstance(modelType, config, null)!; // (config, zeroInit: null)
        modelType.GetProperty("CheckpointInterval")!.SetValue(model, every);
        model.train();
        using var tokens = randint(vocab, new long[] { batch, seq + 1 }, ScalarType.Int64);
        using var input = tokens.narrow(1, 0, seq);
        using var target = tokens.narrow(1, 1, seq).reshape(-1);

        double retainedMiB = 0;
        var times = new List<double>();
        for (int step = 0; step < steps; step++)
        {
            using var scope = NewDisposeScope();
            model.zero_grad();
            malloc_trim(0); // hand freed heap memory back, so RSS counts live allocations
            long rssBefore = Rss("VmRSS");
            var clock = Stopwatch.StartNew();
            var logits = model.call(input);
            var loss = nn.functional.cross_entropy(logits.view(-1, vocab), target);
            if (step == 1 || steps == 1)
            {
                malloc_trim(0);
                retainedMiB = (Rss("VmRSS") - rssBefore) / 1024.0;
            }
            loss.backward();
            Ckpt.ThrowIfBackwardFailed();
            times.Add(clock.Elapsed.TotalMilliseconds);
        }
        var measured = times.Skip(times.Count > 1 ? 1 : 0).Order().ToList();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"every={every} seq={seq} batch={batch} layers={layers} d_model={dModel} retained_after_forward_mib={retainedMiB:F1} " +
            $"checkpoint_saved_peak_mib={Ckpt.Stats.PeakBytes / 1048576.0:F2} peak_rss_mib={Rss("VmHWM") / 1024} " +
            $"median_fwd_bwd_ms={measured[measured.Count / 2]:F1} tokens_per_s={batch * seq / (measured[measured.Count / 2] / 1000):F0}"));
        return 0;
    }

    [DllImport("libc", EntryPoint = "malloc_trim")]
    private static extern int malloc_trim(nuint pad);

    /// <summary>A /proc/self/status field in KiB.</summary>
    private static long Rss(string field)
    {
        foreach (var line in File.ReadLines("/proc/self/status"))
            if (line.StartsWith(field + ":", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        throw new InvalidOperationException($"/proc/self/status has no {field}");
    }
}
