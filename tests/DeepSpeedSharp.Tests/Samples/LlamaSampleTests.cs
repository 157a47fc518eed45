using DeepSpeedSharp.Samples.Llama;
using DeepSpeedSharp.Samples.Llama.Data;
using DeepSpeedSharp.Samples.Shared.Text;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Samples;

/// <summary>The LLaMA sample's data (GPT-2 BPE, the compact vocabulary, the sampler), options, errors and a one-process training run.</summary>
[Trait("Tier", "Full")]
public class LlamaSampleTests
{
    private static string CorpusText => File.ReadAllText(TextCorpus.DefaultPath);

    [Fact]
    public void TheTokenizerIsGpt2sAndRoundTripsTheCorpussFirstLines()
    {
        Assert.Equal(new[] { 15496, 995 }, Gpt2Tokenizer.Encode("Hello world")); // GPT-2's ids
        string firstLines = string.Join("\n", CorpusText.Split('\n').Take(8));
        Assert.StartsWith("The Keeper of Gull Point", firstLines);
        var ids = Gpt2Tokenizer.Encode(firstLines);
        Assert.True(ids.Count > 100 && ids.Count < firstLines.Length / 2, $"{ids.Count} tokens for {firstLines.Length} characters");
        Assert.Equal(firstLines, Gpt2Tokenizer.Decode(ids));
    }

    [Fact]
    public void TheCompactVocabularyIsDeterministicAndRoundTripsTheWholeCorpus()
    {
        var corpus = TextCorpus.Load(TextCorpus.DefaultPath, fullVocab: false);
        Assert.True(corpus.Bytes >= 40_000, $"the shipped corpus has {corpus.Bytes} bytes");
        var map = corpus.Vocabulary;
        var again = TextCorpus.Load(TextCorpus.DefaultPath, fullVocab: false);
        Assert.Equal(map.Gpt2Ids, again.Vocabulary.Gpt2Ids);
        Assert.Equal(corpus.Tokens, again.Tokens);
        // Only the set of ids matters, not their order in the text.
        var gpt2 = Gpt2Tokenizer.Encode(CorpusText);
        Assert.Equal(map.Gpt2Ids, VocabularyMap.Compact(gpt2.Reverse()).Gpt2Ids);
        Assert.Equal(gpt2.Distinct().Order(), map.Gpt2Ids); // sorted ascending, each id once
        Assert.Equal(0, map.PaddedSize % 8);
        Assert.InRange(map.PaddedSize - map.Count, 0, 7);
        Assert.All(Enumerable.Range(0, map.Count), i => Assert.Equal(i, map.ToModel(map.ToGpt2(i))));
        Assert.Equal(CorpusText.TrimStart('\uFEFF'), Gpt2Tokenizer.Decode(corpus.Tokens.Select(map.ToGpt2)));
        Assert.Throws<KeyNotFoundException>(() => map.ToModel(Enumerable.Range(0, 50257).First(id => !map.Gpt2Ids.Contains(id))));

        var full = TextCorpus.Load(TextCorpus.DefaultPath, fullVocab: true);
        Assert.Equal(50304, full.Vocabulary.PaddedSize); // 50,257 padded to a multiple of 128
        Assert.Equal(gpt2, full.Tokens);
    }

    [Fact]
    public void SequentialSamplesFollowTheGlobalIndexFormula()
    {
        // Tokens 0,1,2,...: sample g starts at g·(T+1). Step 1 of a global batch 8 (2 ranks × gas 2 × mb 2),
        // data-parallel rank 1, micro-step 1 takes samples 8 + (1·2 + 1)·2 = 14 and 15.
        var sampler = new BatchSampler(Enumerable.Range(0, 5000).ToArray(), seq: 4, sequential: true, seed: 0);
        var (input, target) = sampler.MicroBatch(step: 1, dataParallelRank: 1, microStep: 1, microBatch: 2, gas: 2, globalBatch: 8);
        Assert.Equal(new long[] { 70, 71, 72, 73, 75, 76, 77, 78 }, input.data<long>().ToArray());
        Assert.Equal(new long[] { 71, 72, 73, 74, 76, 77, 78, 79 }, target.data<long>().ToArray());
        // Random windows depend on (seed, global sample) only: one rank with gas 2 sees what two ranks with gas 1 see.
        var random = new BatchSampler(Enumerable.Range(0, 5000).ToArray(), seq: 4, sequential: false, seed: 9);
        var oneRank = random.MicroBatch(3, 0, 1, 2, gas: 2, globalBatch: 4).Input.data<long>().ToArray();
        var secondRank = random.MicroBatch(3, 1, 0, 2, gas: 1, globalBatch: 4).Input.data<long>().ToArray();
        Assert.Equal(oneRank, secondRank);
    }

    [Fact]
    public void BadOptionsGiveOneLineErrorsNamingTheOption()
    {
        string Error(params string[] args) => Assert.Throws<ArgumentException>(() => LlamaOptions.Parse(args)).Message;
        Assert.Contains("unknown option '--layer'", Error("--layer", "2"));
        Assert.Contains("--vocab", Error("--vocab", "64")); // the vocabulary comes from the data
        Assert.Contains("--kv-heads", Error("--heads", "4", "--kv-heads", "3"));
        Assert.Contains("--heads", Error("--d-model", "30", "--heads", "4"));
        Assert.Contains("--heads", Error("--d-model", "36", "--heads", "4")); // head dimension 9 is odd: no RoPE
        Assert.Contains("--data-order", Error("--data-order=shuffled"));
        Assert.Contains("--full-vocab takes no value", Error("--full-vocab=yes"));
        Assert.Contains("--steps needs an integer >= 0", Error("--steps"));
        Assert.Contains("--save-every needs --save-dir", Error("--save-every", "5"));
        Assert.Contains("--tensor-model-parallel-size", Error("--tensor-model-parallel-size", "0"));

        var o = LlamaOptions.Parse(new[] { "--deepspeed", "--local_rank=1", "--steps=5", "--seq", "32", "--kv-heads", "4", "--full-vocab" });
        Assert.Equal((5, 32, 4, true), (o.Steps, o.Model.Seq, o.Model.KvHeads, o.FullVocab));

        string Unavailable(params string[] args) =>
            Assert.Throws<ArgumentException>(() => LlamaOptions.Parse(args).RequireAvailableParallelism()).Message;
        Assert.Contains("must divide --heads 4", Unavailable("--tensor-model-parallel-size", "3"));
        Assert.StartsWith("--sequence-parallel needs --tensor-model-parallel-size > 1", Unavailable("--sequence-parallel"));
        Assert.Contains("--seq 30 must be a multiple of --tensor-model-parallel-size 4",
            Unavailable("--sequence-parallel", "--tensor-model-parallel-size", "4", "--seq", "30", "--heads", "4", "--kv-heads", "4"));
        Assert.Contains("--pipeline-model-parallel-size 7 needs at least 7 pipeline layers", Unavailable("--pipeline-model-parallel-size", "7"));
        LlamaOptions.Parse(new[] { "--pipeline-model-parallel-size", "2", "--tensor-model-parallel-size", "2", "--sequence-parallel" }).RequireAvailableParallelism();
        LlamaOptions.Parse(new[] { "--pipeline-model-parallel-size", "2", "--tensor-model-parallel-size", "2", "--save-weights", "w.safetensors" }).RequireAvailableParallelism();
        LlamaOptions.Parse(new[] { "--tensor-model-parallel-size", "1", "--pipeline-model-parallel-size", "1" }).RequireAvailableParallelism();
        LlamaOptions.Parse(new[] { "--tensor-model-parallel-size", "2", "--sequence-parallel" }).RequireAvailableParallelism();
    }

    [Theory]
    [InlineData("--tensor-model-parallel-size 3", "--tensor-model-parallel-size")]
    [InlineData("--sequence-parallel", "--sequence-parallel")]
    [InlineData("--pipeline-model-parallel-size 2", "--pipeline-model-parallel-size 2 × --tensor-model-parallel-size 1 must divide the number of ranks 1")]
    [InlineData("--layers x", "--layers")]
    [InlineData("--data /nonexistent/text.txt", "--data")]
    public void TheProgramExitsWith2AndOneErrorLine(string args, string named)
    {
        var (code, _, stderr) = LlamaRun.Run(args);
        Assert.Equal(2, code);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{stderr}");
        Assert.StartsWith("llama: error: ", lines[0]);
        Assert.Contains(named, lines[0]);
    }

    [Fact]
    public void OneProcessLearnsTheShippedCorpus()
    {
        const string config = """
            { "train_micro_batch_size_per_gpu": 8, "steps_per_print": 100,
              "optimizer": { "type": "AdamW", "params": { "lr": 3e-3, "betas": [0.9, 0.95], "weight_decay": 0.01 } } }
            """;
        var run = LlamaRun.Train(1, config, steps: 30);
        Assert.Contains("llama: tokens/s", run.Output);
        Assert.Contains("llama: summary {", run.Output);
        Assert.Equal(30, run.Losses.Length);
        // The first loss is about ln(vocabulary): the compact vocabulary of the corpus, ~2,100 ids.
        Assert.InRange(run.Losses[0], Math.Log(2000), Math.Log(2300));
        Assert.True(run.Losses[^5..].Average() < run.Losses[..5].Average() - 1.0,
            $"the loss should fall clearly: first {run.Losses[0]:F3}, last {run.Losses[^1]:F3}");
    }

    [Fact]
    public void ResumingAndActivationCheckpointingGiveTheSameLosses()
    {
        const string config = """{ "train_micro_batch_size_per_gpu": 4, "steps_per_print": 100 }""";
        var full = LlamaRun.Train(1, config, steps: 6);
        var dir = Directory.CreateTempSubdirectory("dss-llama-ckpt").FullName;
        LlamaRun.Train(1, config, steps: 3, extraArgs: $"--save-dir {dir}");
        var resumed = LlamaRun.Train(1, config, steps: 6, extraArgs: $"--resume {dir}");
        Assert.Contains("llama: resumed from", resumed.Output);
        Assert.Equal(full.Losses[3..], resumed.Losses);
        var recomputed = LlamaRun.Train(1, config, steps: 6, extraArgs: "--checkpoint-activations");
        Assert.Equal(full.Losses, recomputed.Losses);
    }
}
