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
public sealed class LlamaOptions : SampleOptions
{
    /// <summary>The model's shape; its <see cref="LlamaConfig.Vocab"/> is set by the trainer from the data.</summary>
    public LlamaConfig Model { get; private set; } = new();
    /// <summary><c>--full-vocab</c>: GPT-2's 50,257 ids (padded to 50,304) instead of the compact vocabulary.</summary>
    public bool FullVocab { get; private set; }
    /// <summary><c>--tensor-model-parallel-size N</c> (default 1).</summary>
    public int TensorModelParallelSize { get; private set; } = 1;
    /// <summary><c>--sequence-parallel</c>: Megatron's sequence parallelism (needs tensor parallelism).</summary>
    public bool SequenceParallel { get; private set; }
    /// <summary><c>--hf-model DIR</c>: a Hugging Face LlamaForCausalLM directory; its config.json sets the shape and its weights are loaded.</summary>
    public string? HfModel { get; private set; }
    /// <summary><c>--zero-init</c>: build the model already partitioned (ZeRO-3's zero.Init; needs ZeRO stage 3).</summary>
    public bool ZeroInit { get; private set; }

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
        var hfModel = Add(root, TrainerOptions.Text("--hf-model", "DIR", "A Hugging Face LlamaForCausalLM directory (config.json + safetensors weights, sharded or not): its shape and weights"));
        var zeroInit = Add(root, TrainerOptions.Flag("--zero-init", "Build the model partitioned (ZeRO-3's zero.Init); with --hf-model each rank reads only its partitions"));
        var o = new LlamaOptions();
        if (o.ParseCommon(root, args, defaultSteps: 50) is not { } r) return o;
        o.Model = d with { DModel = r.GetValue(dModel), Layers = r.GetValue(layers), Heads = r.GetValue(heads), KvHeads = r.GetValue(kvHeads),
                           FfnHidden = r.GetValue(ffn), Seq = r.GetValue(seq), Dropout = r.GetValue(dropout) };
        (o.FullVocab, o.TensorModelParallelSize, o.SequenceParallel) = (r.GetValue(fullVocab), r.GetValue(tensor), r.GetValue(sequenceParallel));
        (o.HfModel, o.ZeroInit) = (r.GetValue(hfModel), r.GetValue(zeroInit));
        if (o.HfModel is { } dir)
        {
            if (o.InitWeights != null) throw new ArgumentException("--hf-model and --init-weights both give the weights; pass one");
            var hf = HfLlamaConfig.Read(dir, o.Model.Seq, o.Model.Dropout);
            // A shape flag may repeat the directory's shape but not contradict it.
            foreach (var (flag, given, initial, fromFile) in new[]
                     {
                         ("--d-model", o.Model.DModel, d.DModel, hf.DModel), ("--layers", o.Model.Layers, d.Layers, hf.Layers),
                         ("--heads", o.Model.Heads, d.Heads, hf.Heads), ("--kv-heads", o.Model.KvHeads, d.KvHeads, hf.KvHeads),
                         ("--ffn-hidden", o.Model.FfnHidden ?? 0, 0, hf.FfnHiddenSize),
                     })
                if (given != initial && given != fromFile)
                    throw new ArgumentException($"{flag} {given} contradicts '{Path.Combine(dir, HfLlamaConfig.FileName)}' ({fromFile}); --hf-model sets the shape, drop {flag}");
            o.Model = hf;
        }
        o.Model.Validate();
        if (o.ZeroInit && o.PipelineModelParallelSize > 1)
            throw new ArgumentException($"--zero-init builds a ZeRO stage 3 model, which pipeline parallelism does not support (--pipeline-model-parallel-size {o.PipelineModelParallelSize}); drop --zero-init or use 1");
        return o;
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
