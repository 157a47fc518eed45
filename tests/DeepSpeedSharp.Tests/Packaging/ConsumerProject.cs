namespace DeepSpeedSharp.Tests.Packaging;

/// <summary>
/// A user's training program in its own folder, as the README's "Use it in your project" section tells: a project file
/// with the two PackageReferences, a DeepSpeed config, and the README's loop over <c>trainingData:</c>'s loader.
/// </summary>
internal static class ConsumerProject
{
    /// <summary>Writes the project into <paramref name="dir"/>; returns the config file's path.</summary>
    public static string Write(string dir, string deepSpeedSharpVersion, string libTorchVersion)
    {
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
              </PropertyGroup>
              <ItemGroup>
                <PackageReference Include="DeepSpeedSharp" Version="{deepSpeedSharpVersion}" />
                <PackageReference Include="libtorch-cpu-linux-x64" Version="{libTorchVersion}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(dir, "Program.cs"), Program);
        var config = Path.Combine(dir, "ds_config.json");
        File.WriteAllText(config, """
            {
              "train_micro_batch_size_per_gpu": 16,
              "gradient_accumulation_steps": 1,
              "optimizer": { "type": "AdamW", "params": { "lr": 0.01 } },
              "zero_optimization": { "stage": 1 },
              "steps_per_print": 1000
            }
            """);
        return config;
    }

    /// <summary>The program: a small classifier trained for 3 epochs over this rank's shard of 256 samples; with
    /// <c>--save-dir DIR</c> it then saves a checkpoint there.</summary>
    private const string Program = """
        using DeepSpeedSharp;
        using TorchSharp;
        using static TorchSharp.torch;

        DeepSpeed.InitDistributed();
        manual_seed(0);
        var model = nn.Sequential(("fc1", nn.Linear(8, 32)), ("act", nn.Tanh()), ("fc2", nn.Linear(32, 2)));
        var x = randn(256, 8, generator: new Generator(1));
        var y = x.sum(dim: 1).gt(0).to(ScalarType.Int64);
        var ids = arange(256, dtype: ScalarType.Int64);
        string config = args[Array.IndexOf(args, "--deepspeed_config") + 1];
        var (engine, _, loader, _) = DeepSpeed.Initialize(model, config: config, trainingData: torch.utils.data.TensorDataset(x, y, ids));

        float first = float.NaN, last = float.NaN;
        long samples = 0, idSum = 0;
        for (int epoch = 0; epoch < 3; epoch++)
        {
            foreach (var batch in loader!)
            {
                using var scope = NewDisposeScope();
                var loss = nn.functional.cross_entropy(engine.Forward(batch[0]), batch[1]);
                engine.Backward(loss);
                engine.Step();
                last = loss.item<float>();
                if (float.IsNaN(first)) first = last;
                samples += batch[0].shape[0];
                if (epoch == 0) idSum += batch[2].sum().item<long>();
            }
        }
        Console.WriteLine($"consumer rank {engine.DataParallelRank}/{engine.DataParallelWorldSize}: {samples} samples, epoch-0 id sum {idSum}, first loss {first:F4}, last loss {last:F4}");
        if (Array.IndexOf(args, "--save-dir") is var save and >= 0) engine.SaveCheckpoint(args[save + 1]);
        """;
}
