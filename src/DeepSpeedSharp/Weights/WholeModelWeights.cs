using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Topology;
using DeepSpeedSharp.Zero;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Weights;

/// <summary>
/// Whole-model weights (one safetensors file or a Hugging Face model directory under the unsplit model's names, as a single process or Hugging Face
/// writes it) for a model split by tensor and pipeline parallelism. <see cref="Load"/> gives each rank its slice of
/// every tensor-parallel parameter — along the dimension <c>MarkTensorModelParallel</c> recorded, reading only that
/// slice's bytes — and replicated parameters whole; <see cref="Save"/> gathers the slices over the tensor group and
/// the stages over the pipeline into whole tensors that global rank 0 writes once. A padded vocabulary
/// (<see cref="WholeModelOptions.Vocabulary"/>) loads from and saves to its real row count.
/// </summary>
public static class WholeModelWeights
{
    /// <summary>
    /// Copies every parameter of <paramref name="module"/> (this rank's slices, or this rank's pipeline stage) from the
    /// whole-model weights at <paramref name="path"/>, converting float dtypes. A parameter partitioned by
    /// <c>ZeroInit</c> gets only its ZeRO-3 partition, read from that partition's byte ranges of the file. Nothing is
    /// changed unless every parameter fits; otherwise one error lists each missing or mis-shaped tensor with the
    /// file's and the model's whole shapes.
    /// </summary>
    /// <param name="module">The model as this rank holds it: tensor-parallel slices and/or one pipeline stage, whole or partitioned by <c>ZeroInit</c>.</param>
    /// <param name="path">A safetensors file with the unsplit model's tensors, or a Hugging Face model directory (see <see cref="WeightFiles"/>).</param>
    /// <param name="mpu">The topology the model is split over (a <see cref="PipelineModule"/>'s grid when null).</param>
    /// <param name="options">Name map, vocabulary padding, strictness.</param>
    /// <returns>Bytes read from the files' data sections.</returns>
    public static long Load(nn.Module module, string path, IModelParallelUnit? mpu = null, WholeModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        options = (options ?? new WholeModelOptions()).For(module);
        options.Vocabulary?.Validate();
        mpu ??= (module as PipelineModule)?.Grid;
        var tp = TensorParallelContext.From(mpu);
        bool stage = (mpu?.GetPipelineModelParallelWorldSize() ?? 1) > 1;
        using var files = WeightFiles.Open(path);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var plans = new List<LoadPlan>();
        var problems = new List<string>();
        var missing = new List<string>();
        foreach (var (name, p) in module.named_parameters())
        {
            string fileName = options.NameInFile(name);
            wanted.Add(fileName);
            var partition = ZeroInit.Find(p);
            var local = partition?.Shape ?? p.shape;
            var attrs = p.GetParallelAttributes();
            int dim = attrs.TensorModelParallel && tp.Size > 1 ? attrs.PartitionDim : -1;
            var whole = WholeShape(local, dim, tp.Size);
            string where = files.Where(fileName);
            if (!files.Tensors.TryGetValue(fileName, out var found)) missing.Add(fileName);
            else if (dim >= 0 && attrs.PartitionStride != 1)
                problems.Add($"tensor '{fileName}' is split with partition stride {attrs.PartitionStride}; only contiguous slices (stride 1) load from a whole-model file");
            else if (!Fits(found.Entry.Shape, whole, options.Vocabulary))
                problems.Add($"tensor '{fileName}'{where} has shape {Show(found.Entry.Shape)} in the file, the model needs {Show(whole)}" +
                             (dim >= 0 ? $" (split along dimension {dim} over {tp.Size} tensor ranks, {Show(local)} each)" : "") +
                             (options.Vocabulary is { } v && whole.Length > 0 && whole[0] == v.PaddedSize ? $" or {v.Size} rows (the vocabulary before padding)" : ""));
            else if (!IsFloat(found.Entry.Type)) problems.Add($"tensor '{fileName}'{where} has dtype {found.Entry.Type}; a floating-point dtype is needed");
            else plans.Add(new LoadPlan(p, found.Reader, found.Entry, local, dim, partition));
        }
        if (missing.Count > 0) problems.Insert(0, $"missing {Names("tensor", missing)}{(missing.Count == 1 ? files.Where(missing[0]) : files.Where(""))}");
        if (options.Strict && !stage && files.Tensors.Keys.Where(k => !wanted.Contains(k)).Order(StringComparer.Ordinal).ToList() is { Count: > 0 } unexpected)
        {
            problems.Add($"unexpected {Names("tensor", unexpected)}{(unexpected.Count == 1 ? files.Where(unexpected[0]) : "")} (the model has no such parameter" +
                         (unexpected.Count == 1 ? ")" : "s)") +
                         (unexpected.Any(LayerIndexName) ? "; names like '0.embed_tokens.weight' are a pipeline stage's layer-index names: save with the " +
                                                           "PipelineModule's ModelNames set, or pass WholeModelOptions.FileName" : ""));
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"weights '{path}' do not fit the model: {string.Join("; ", problems)}");
        using var noGrad = no_grad();
        foreach (var plan in plans)
        {
            using var scope = NewDisposeScope();
            if (plan.Partition is { } part)
            {
                // A ZeroInit partition: flat elements [rank · size, rank · size + size) of this tensor rank's slice.
                long size = part.Slice.numel(), first = part.Rank * size, real = Math.Clamp(part.Numel - first, 0, size);
                if (real > 0) ReadFlat(plan, tp.Rank, first, part.Slice.narrow(0, 0, real));
            }
            else ReadFlat(plan, tp.Rank, 0, plan.Parameter.detach().view(-1));
        }
        return files.BytesRead;
    }

    private sealed record LoadPlan(Parameter Parameter, SafeTensorsReader Reader, SafeTensorEntry Entry, long[] Local, int Dim, ZeroInit.PrePartitioned? Partition);

    /// <summary>
    /// Fills <paramref name="target"/> with flat elements [<paramref name="first"/>, + its length) of this tensor rank's
    /// slice (or the whole tensor) from the file, reading only those elements; rows beyond the file's vocabulary are zero.
    /// </summary>
    private static void ReadFlat(LoadPlan plan, int tpRank, long first, Tensor target)
    {
        using var _ = target;
        long real = target.numel();
        var local = plan.Local;
        var file = plan.Entry.Shape.Length == 0 ? new long[] { 1 } : plan.Entry.Shape;
        long rowElements = local.Skip(1).Aggregate(1L, (a, b) => a * b);
        // The slice of the file this tensor rank's elements come from, and how many of its rows the file has.
        int dim = plan.Dim < 0 ? 0 : plan.Dim;
        long start = plan.Dim < 0 ? 0 : tpRank * local[plan.Dim], count = plan.Dim < 0 ? file[0] : local[plan.Dim];
        long rows = plan.Dim == 0 ? Math.Clamp(file[0] - start, 0, count) : Math.Min(file[0], local.Length == 0 ? 1 : local[0]);
        if (plan.Dim == 0) count = rows;
        long available = Math.Clamp(rows * rowElements - first, 0, real);
        if (available < real) target.zero_();
        // In pieces, so that the file-dtype buffer stays small beside the tensor it fills.
        for (long at = 0; at < available; at += ReadPiece)
        {
            long n = Math.Min(ReadPiece, available - at);
            using var values = plan.Reader.ReadSliceRange(plan.Entry.Name, dim, start, count, first + at, n);
            using var dst = target.narrow(0, at, n);
            dst.copy_(values);
        }
    }

    /// <summary>Elements read at a time (4 MiB of fp32).</summary>
    private const long ReadPiece = 1 << 20;

    /// <summary>
    /// Writes the whole model to <paramref name="path"/> (safetensors, through a temporary file): tensor-parallel slices
    /// are gathered along their partition dimension, pipeline stages send their tensors to global rank 0, which writes
    /// each parameter once (copies of tied weights on later stages are left out). Collective: call it on every rank.
    /// Data-parallel replicas hold the same weights and only wait. Parameters must be whole on each rank (not ZeRO-3
    /// partitions: save those through the engine's <c>Save16BitModel</c>).
    /// </summary>
    /// <param name="module">The model as this rank holds it.</param>
    /// <param name="path">The file to write.</param>
    /// <param name="mpu">The topology (a <see cref="PipelineModule"/>'s grid when null).</param>
    /// <param name="options">Name map, vocabulary padding, dtype.</param>
    public static void Save(nn.Module module, string path, IModelParallelUnit? mpu = null, WholeModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        ArgumentNullException.ThrowIfNull(path);
        SaveParameters(module.named_parameters().Select(p => (p.name, p.parameter)), path, mpu ?? (module as PipelineModule)?.Grid,
            (options ?? new WholeModelOptions()).For(module));
    }

    /// <summary><see cref="Save"/> of named parameters (e.g. gathered ZeRO-3 parameters, one at a time).</summary>
    internal static void SaveParameters(IEnumerable<(string Name, Parameter Parameter)> parameters, string path, IModelParallelUnit? mpu, WholeModelOptions? options)
    {
        options ??= new WholeModelOptions();
        options.Vocabulary?.Validate();
        var list = parameters.ToList();
        // Checked on every rank before any collective, so all ranks refuse together.
        var released = list.FirstOrDefault(p => p.Parameter.numel() == 0);
        if (released.Parameter is not null)
            throw new InvalidOperationException($"saving whole-model weights: parameter '{released.Name}' holds no elements on this rank (a released ZeRO-3 partition?); " +
                                                "save a ZeRO-3 model with the engine's Save16BitModel");
        var tp = TensorParallelContext.From(mpu);
        bool distributed = Dist.IsInitialized;
        int globalRank = distributed ? Dist.Rank : 0;
        var tensors = new List<(string Name, Tensor Tensor)>();
        try
        {
            if ((mpu?.GetDataParallelRank() ?? globalRank) == 0)
            {
                foreach (var (name, p) in list)
                {
                    if (p.IsPipeReplicated()) continue;
                    var attrs = p.GetParallelAttributes();
                    var whole = StageTransfer.GatherSlices(p, attrs.TensorModelParallel ? attrs.PartitionDim : -1, tp);
                    if (whole is null) continue;
                    var cut = Cut(whole, options.Vocabulary);
                    if (options.DType is { } d && cut.is_floating_point() && cut.dtype != d)
                    {
                        var converted = cut.to(d);
                        cut.Dispose();
                        cut = converted;
                    }
                    tensors.Add((options.NameInFile(name), cut));
                }
                var pipe = mpu?.GetPipelineModelParallelGroup();
                if (pipe is { Size: > 1 } && tp.Rank == 0) StageTransfer.ToFirstStage(pipe, tensors);
            }
            if (globalRank == 0) Write(path, tensors);
        }
        finally
        {
            foreach (var (_, t) in tensors) t.Dispose();
        }
        if (distributed) Dist.World.Barrier();
    }

    private static void Write(string path, List<(string Name, Tensor Tensor)> tensors)
    {
        var duplicate = tensors.GroupBy(t => t.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null)
            throw new InvalidOperationException($"saving whole-model weights: two parameters map to the file name '{duplicate.Key}'");
        SafeTensors.WriteAtomic(path, tensors.Select(t => new KeyValuePair<string, Tensor>(t.Name, t.Tensor)));
    }

    private static Tensor Cut(Tensor whole, VocabularyPadding? vocabulary)
    {
        if (vocabulary is null || whole.dim() == 0 || whole.shape[0] != vocabulary.PaddedSize || vocabulary.Size == vocabulary.PaddedSize) return whole;
        var cut = whole.narrow(0, 0, vocabulary.Size).clone();
        whole.Dispose();
        return cut;
    }

    private static long[] WholeShape(long[] local, int dim, int tpSize)
    {
        var whole = (long[])local.Clone();
        if (dim >= 0 && dim < whole.Length) whole[dim] *= tpSize;
        return whole;
    }

    private static bool Fits(long[] file, long[] whole, VocabularyPadding? vocabulary)
    {
        if (file.SequenceEqual(whole)) return true;
        return vocabulary != null && file.Length == whole.Length && whole.Length > 0 && whole[0] == vocabulary.PaddedSize
               && file[0] == vocabulary.Size && file.Skip(1).SequenceEqual(whole.Skip(1));
    }

    private static bool IsFloat(ScalarType t) => t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.BFloat16 or ScalarType.Float16;

    /// <summary>"tensor 'a'", or "5 tensors: 'a', 'b', 'c', 'd' and 1 more" — at most four names, so a wholly wrong file stays one readable line.</summary>
    private static string Names(string what, List<string> names) => names.Count == 1
        ? $"{what} '{names[0]}'"
        : $"{names.Count} {what}s: {string.Join(", ", names.Take(4).Select(n => $"'{n}'"))}{(names.Count > 4 ? $" and {names.Count - 4} more" : "")}";

    private static bool LayerIndexName(string name) => name.Length > 1 && char.IsAsciiDigit(name[0]) && name.TrimStart("0123456789".ToCharArray()).StartsWith('.');

    private static string Show(long[] shape) => $"[{string.Join(", ", shape)}]";
}
