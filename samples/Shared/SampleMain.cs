namespace DeepSpeedSharp.Samples.Shared;

/// <summary>
/// The samples' entry point around their trainer: a bad option, a bad config or missing data is one line
/// <c>NAME: error: MESSAGE</c> on stderr and exit code 2 (the whole exception with <c>DSS_DEBUG=1</c>).
/// </summary>
public static class SampleMain
{
    /// <summary>Loads libtorch and gives it the launcher's <c>OMP_NUM_THREADS</c> (its threads per rank), as every trainer starts.</summary>
    public static void StartTorch()
    {
        Native.TorchRuntime.EnsureLoaded();
        if (int.TryParse(Environment.GetEnvironmentVariable("OMP_NUM_THREADS"), out int threads) && threads > 0)
            TorchSharp.torch.set_num_threads(threads);
    }

    /// <summary>Runs <paramref name="main"/> and returns its exit code, or 2 after printing a usage or input error.</summary>
    /// <param name="name">The sample's name, prefixed to its error line.</param>
    /// <param name="main">Parses the options and trains.</param>
    public static int Run(string name, Func<int> main)
    {
        ArgumentNullException.ThrowIfNull(main);
        try
        {
            return main();
        }
        catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or Config.DeepSpeedConfigException or InvalidOperationException)
        {
            Console.Error.WriteLine(Environment.GetEnvironmentVariable("DSS_DEBUG") == "1" ? $"{name}: error: {e}" : $"{name}: error: {e.Message.ReplaceLineEndings(" ")}");
            return 2;
        }
    }
}
