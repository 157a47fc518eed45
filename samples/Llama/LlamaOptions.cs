using System.CommandLine;
using DeepSpeedSharp.CommandLine;
using DeepSpeedSharp.Samples.Shared;
using DeepSpeedSharp.Samples.Llama.Model;
using DeepSpeedSharp.Samples.Shared.Text;

namespace DeepSpeedSharp.Samples.Llama;

/// <summary>
/// Command-line options of the LLaMA sample. Unknown options are errors that list the known ones; every error is
/// one line naming the option. The vocabulary size is not an option: it comes from the data (see
/// <see cref="VocabularyMap"/>).
/// </summary>
public sealed class LlamaOptions
{
    /// <summary>The model's shape; its <see cref="LlamaConfig.Vocab"/> is set by the trainer from the data.</summary>
    public LlamaConfig Model { get; private set; } = new();
    /// <summary><c>--deepspeed_config FILE</c>: the DeepSpeed JSON config (default: <see cref="Trainer.DefaultConfig"/>).</summary>
    public string? DeepSpeedConfig { get; private set; }
    /// <summary><c>--steps N</c>: optimizer steps in total (default 50).</summary>
    public int Steps { get; private set; } = 50;
    /// <summary><c>--seed N</c>: model initialisation and data order.</summary>
    public int Seed { get; private set; } = 1234;
    /// <summary><c>--micro-batch N</c>: overrides the config's micro-batch size per rank.</summary>
    public int? MicroBatch { get; private set; }
    /// <summary><c>--init-weights FILE</c>: whole-model safetensors weights loaded after initialisation (each tensor rank reads its slices).</summary>
    public string? InitWeights { get; private set; }
    /// <summary><c>--save-weights FILE</c>: the trained weights as one whole-model safetensors file (slices and stages gathered, rank 0 writes).</summary>
    public string? SaveWeights { get; private set; }
    /// <summary><c>--data FILE</c>: a UTF-8 text file to train on instead of the shipped corpus.</summary>
    public string? Data { get; private set; }
    /// <summary><c>--full-vocab</c>: GPT-2's 50,257 ids (padded to 50,304) instead of the compact vocabulary.</summary>
    public bool FullVocab { get; private set; }
    /// <summary><c>--data-order sequential|random</c> (default random).</summary>
    public bool SequentialData { get; private set; }
    /// <summary><c>--loss-log FILE</c>: rank 0 writes one JSON line {step, loss, lr, grad_norm} per step.</summary>
    public string? LossLog { get; private set; }
    /// <summary><c>--local_rank N</c>: passed by launchers; accepted, the environment says the same.</summary>
    public int? LocalRank { get; private set; }
    /// <summary><c>--warmup-steps N</c>: steps left out of the tokens/s median.</summary>
    public int WarmupSteps { get; private set; } = 3;
    /// <summary>0 = off; k = checkpoint the blocks in groups of k (<c>--checkpoint-activations</c> alone means 1).</summary>
    public int CheckpointActivations { get; private set; }
    /// <summary><c>--save-dir DIR</c>: engine checkpoints go here.</summary>
    public string? SaveDir { get; private set; }
    /// <summary><c>--save-every K</c>: save a checkpoint every K steps (and at the end).</summary>
    public int SaveEvery { get; private set; }
    /// <summary><c>--resume DIR</c>: continue from the latest checkpoint of DIR (or from a tag directory).</summary>
    public string? Resume { get; private set; }
    /// <summary><c>--tensor-model-parallel-size N</c> (default 1).</summary>
    public int TensorModelParallelSize { get; private set; } = 1;
    /// <summary><c>--sequence-parallel</c>: Megatron's sequence parallelism (needs tensor parallelism).</summary>
    public bool SequenceParallel { get; private set; }
    /// <summary>
    /// <c>--pipeline-model-parallel-size N</c> (default 1): N &gt; 1 splits the model into N pipeline stages (embedding,
    /// blocks, head as pipeline layers; see <see cref="LlamaPipeline"/>) trained with <c>TrainBatch</c>; it composes with
    /// <c>--tensor-model-parallel-size</c> on one <c>PipelineParallelGrid.Create(N, T)</c>.
    /// </summary>
    public int PipelineModelParallelSize { get; private set; } = 1;

    /// <summary>True when <c>--help</c> was given (the help is printed; nothing else is set).</summary>
    public bool HelpShown { get; private set; }

    /// <summary>Parses the command line (System.CommandLine: <c>--name value</c> and <c>--name=value</c>); DeepSpeed's
    /// <c>--deepspeed</c>, <c>--deepspeed_config</c> and <c>--local_rank</c> come from <see cref="DeepSpeed.AddConfigArguments"/>.</summary>
    /// <exception cref="ArgumentException">An unknown option, a missing or bad value, or an impossible model shape.</exception>
    public static LlamaOptions Parse(string[] args)
    {
        var root = new RootCommand("The LLaMA sample: a LLaMA-style model trained by DeepSpeedSharp on real text, with tensor, sequence and pipeline parallelism");
        var d = new LlamaConfig();
        var dModel = Add(root, TrainerOptions.Int("--d-model", "Model width", d.DModel));
        var layers = Add(root, TrainerOptions.Int("--layers", "Transformer blocks", d.Layers));
        var heads = Add(root, TrainerOptions.Int("--heads", "Attention heads", d.Heads));
        var kvHeads = Add(root, TrainerOptions.Int("--kv-heads", "Key/value heads (grouped-query attention; must divide --heads)", d.KvHeads));
        var ffn = Add(root, TrainerOptions.OptionalInt("--ffn-hidden", "Hidden size of the SwiGLU MLP (default: LLaMA's for --d-model)"));
        var seq = Add(root, TrainerOptions.Int("--seq", "Sequence length", d.Seq));
        var dropout = Add(root, TrainerOptions.Double("--dropout", "Dropout probability", d.Dropout));
        var fullVocab = Add(root, TrainerOptions.Flag("--full-vocab", "GPT-2's 50,257 ids (padded to 50,304) instead of the compact vocabulary"));
        var tensor = Add(root, TrainerOptions.Int("--tensor-model-parallel-size", "Megatron-style tensor parallelism", 1));
        var sequenceParallel = Add(root, TrainerOptions.Flag("--sequence-parallel", "Megatron's sequence parallelism (needs tensor parallelism)"));
        var common = new SampleArguments(root, defaultSteps: 50);
        var o = new LlamaOptions();
        if (SampleArguments.Parse(root, args) is not { } r)
        {
            o.HelpShown = true;
            return o;
        }
        var c = common.Read(r);
        o.Model = d with { DModel = r.GetValue(dModel), Layers = r.GetValue(layers), Heads = r.GetValue(heads), KvHeads = r.GetValue(kvHeads),
                           FfnHidden = r.GetValue(ffn), Seq = r.GetValue(seq), Dropout = r.GetValue(dropout) };
        o.Model.Validate();
        (o.DeepSpeedConfig, o.LocalRank, o.Steps, o.Seed, o.MicroBatch, o.InitWeights, o.SaveWeights, o.Data) =
            (c.DeepSpeed.DeepSpeedConfig, c.DeepSpeed.LocalRank, c.Steps, c.Seed, c.MicroBatch, c.InitWeights, c.SaveWeights, c.Data);
        (o.SequentialData, o.LossLog, o.WarmupSteps, o.CheckpointActivations, o.SaveDir, o.SaveEvery, o.Resume, o.PipelineModelParallelSize) =
            (c.SequentialData, c.LossLog, c.WarmupSteps, c.CheckpointActivations, c.SaveDir, c.SaveEvery, c.Resume, c.PipelineModelParallelSize);
        (o.FullVocab, o.TensorModelParallelSize, o.SequenceParallel) = (r.GetValue(fullVocab), r.GetValue(tensor), r.GetValue(sequenceParallel));
        return o;
    }

    private static Option<T> Add<T>(RootCommand root, Option<T> option)
    {
        root.Options.Add(option);
        return option;
    }

    /// <summary>
    /// Throws when the parallel flags cannot work together: <c>--sequence-parallel</c> needs
    /// <c>--tensor-model-parallel-size</c> &gt; 1 and a sequence length it divides, the tensor size must divide the heads
    /// and kv heads; with pipeline stages (<c>--pipeline-model-parallel-size</c> &gt; 1) every stage needs a layer.
    /// </summary>
    public void RequireAvailableParallelism()
    {
        int tp = TensorModelParallelSize;
        if (SequenceParallel && tp == 1)
            throw new ArgumentException("--sequence-parallel needs --tensor-model-parallel-size > 1 (it splits the sequence across the tensor-parallel ranks)");
        if (SequenceParallel && Model.Seq % tp != 0)
            throw new ArgumentException($"--sequence-parallel: --seq {Model.Seq} must be a multiple of --tensor-model-parallel-size {tp}");
        if (Model.Heads % tp != 0 || Model.KvHeads % tp != 0)
            throw new ArgumentException($"--tensor-model-parallel-size {tp} must divide --heads {Model.Heads} and --kv-heads {Model.KvHeads}");
        if (Model.FfnHiddenSize % tp != 0)
            throw new ArgumentException($"--tensor-model-parallel-size {tp} must divide --ffn-hidden {Model.FfnHiddenSize}");
        int pp = PipelineModelParallelSize;
        if (pp == 1) return;
        if (Model.Layers + 2 < pp)
            throw new ArgumentException($"--pipeline-model-parallel-size {pp} needs at least {pp} pipeline layers, but --layers {Model.Layers} gives {Model.Layers + 2} (embedding, blocks, head)");
    }
}
