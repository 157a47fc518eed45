using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Zero;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// ZeRO-3's user APIs on N ranks: a model built with ZeroInit holds only slices; GatheredParameters shows full values
/// and keeps rank 0's modification; Save16BitModel refuses without stage3_gather_16bit_weights_on_model_save and
/// writes the full weights with it. Args: OUTPUT_DIR. Prints "ok" lines; exits non-zero on any mismatch.
/// </summary>
public sealed class Zero3ApiScenario : IScenario
{
    public string Name => "zero3-api";

    public int Run(string[] args)
    {
        string dir = args[0];
        Dist.Initialize();
        int rank = Dist.Rank, world = Dist.WorldSize;
        torch.manual_seed(5);
        var init = new ZeroInit();
        var model = nn.Sequential(("a", init.Partition(nn.Linear(10, 7))), ("act", nn.Tanh()), ("b", init.Partition(nn.Linear(7, 3))));
        Check(model.parameters().All(p => p.numel() == 0), "ZeroInit left full parameters on a rank");
        torch.manual_seed(5);
        var reference = nn.Sequential(("a", nn.Linear(10, 7)), ("act", nn.Tanh()), ("b", nn.Linear(7, 3)));

        foreach (bool gatherOnSave in new[] { false, true })
        {
            string config = $$"""
                { "train_micro_batch_size_per_gpu": 2, "optimizer": {"type": "adamw"},
                  "zero_optimization": { "stage": 3, "stage3_param_persistence_threshold": 0,
                                         "stage3_gather_16bit_weights_on_model_save": {{(gatherOnSave ? "true" : "false")}} } }
                """;
            if (gatherOnSave)
            {
                // A fresh engine over a plain model (the first engine owns the ZeroInit model).
                torch.manual_seed(5);
                model = nn.Sequential(("a", nn.Linear(10, 7)), ("act", nn.Tanh()), ("b", nn.Linear(7, 3)));
            }
            var engine = DeepSpeed.Initialize(model, config: config).Engine;
            var weight = model.parameters().First();
            using (new GatheredParameters(new[] { weight }))
                Check(weight.eq(reference.parameters().First()).all().item<bool>(), "gathered values differ from the unpartitioned model's");
            Check(weight.numel() == 0, "GatheredParameters did not release the parameter");

            using (var g = new GatheredParameters(new[] { weight }, modifierRank: 0))
                if (rank == 0) using (no_grad()) weight.fill_(0.25);
            using (new GatheredParameters(new[] { weight }))
                Check(weight.eq(0.25).all().item<bool>(), "rank 0's modification was not kept on every rank");

            bool saved = engine.Save16BitModel(dir, $"model{(gatherOnSave ? 1 : 0)}.safetensors");
            Check(saved == gatherOnSave, $"Save16BitModel returned {saved} with stage3_gather_16bit_weights_on_model_save {gatherOnSave}");
            if (saved && rank == 0)
            {
                var file = SafeTensors.Read(Path.Combine(dir, "model1.safetensors"));
                Check(file.Count == 4 && file["a.weight"].shape.SequenceEqual(new long[] { 7, 10 }) && file["a.weight"].eq(0.25).all().item<bool>()
                      && file["b.bias"].eq(reference.parameters().Last()).all().item<bool>(), "saved weights are not the full model");
            }
            engine.Dispose();
        }
        Console.WriteLine($"ok rank {rank} of {world}");
        Dist.Destroy();
        return 0;
    }

    private static void Check(bool condition, string what)
    {
        if (!condition) throw new InvalidOperationException(what);
    }
}
