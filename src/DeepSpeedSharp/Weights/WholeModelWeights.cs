using DeepSpeedSharp.Comm;
using DeepSpeedSharp.IO;
using DeepSpeedSharp.Pipeline;
using DeepSpeedSharp.Topology;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Weights;

/// <summary>
/// Whole-model weights (one safetensors file under the unsplit model's names, as a single process or Hugging Face
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
    /// whole-model file at <paramref name="path"/>, converting float dtypes. Nothing is changed unless every parameter
    /// fits; otherwise one error lists each missing or mis-shaped tensor with the file's and the model's whole shapes.
    /// </summary>
    /// <param name="module">The model as this rank holds it: tensor-parallel slices and/or one pipeline stage.</param>
    /// <param name="path">A safetensors file with the unsplit model's tensors.</param>
    /// <param name="mpu">The topology the model is split over (a <see cref="PipelineModule"/>'s grid when null).</param>
    /// <param name="options">Name map, vocabulary padding, strictness.</param>
    public static void Load(nn.Module module, string path, IModelParallelUnit? mpu = null, WholeModelOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        options ??= new WholeModelOptions();
        options.Vocabulary?.Validate();
        mpu ??= (module as PipelineModule)?.Grid;
        var tp = TensorParallelContext.From(mpu);
        bool stage = (mpu?.GetPipelineModelParallelWorldSize() ?? 1) > 1;
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist", path);
        using var reader = new SafeTensorsReader(path);
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        var plans = new List<(Parameter P, SafeTensorEntry Entry, int Dim)>();
        var problems = new List<string>();
        foreach (var (name, p) in module.named_parameters())
        {
            string fileName = options.NameInFile(name);
            wanted.Add(fileName);
            var attrs = p.GetParallelAttributes();
            int dim = attrs.TensorModelParallel && tp.Size > 1 ? attrs.PartitionDim : -1;
            var whole = WholeShape(p.shape, dim, tp.Size);
            if (!reader.Entries.TryGetValue(fileName, out var entry)) problems.Add($"missing tensor '{fileName}'");
            else if (dim >= 0 && attrs.PartitionStride != 1)
                problems.Add($"tensor '{fileName}' is split with partition stride {attrs.PartitionStride}; only contiguous slices (stride 1) load from a whole-model file");
            else if (!Fits(entry.Shape, whole, options.Vocabulary))
                problems.Add($"tensor '{fileName}' has shape {Show(entry.Shape)} in the file, the model needs {Show(whole)}" +
                             (dim >= 0 ? $" (split along dimension {dim} over {tp.Size} tensor ranks, {Show(p.shape)} each)" : "") +
                             (options.Vocabulary is { } v && whole.Length > 0 && whole[0] == v.PaddedSize ? $" or {v.Size} rows (the vocabulary before padding)" : ""));
            else if (!IsFloat(entry.Type)) problems.Add($"tensor '{fileName}' has dtype {entry.Type}; a floating-point dtype is needed");
            else plans.Add((p, entry, dim));
        }
        if (options.Strict && !stage)
        {
            problems.AddRange(reader.Entries.Keys.Where(k => !wanted.Contains(k)).Order(StringComparer.Ordinal)
                .Select(k => $"unexpected tensor '{k}' (the model has no such parameter)"));
        }
        if (problems.Count > 0)
            throw new InvalidDataException($"weights file '{path}' does not fit the model: {string.Join("; ", problems)}");
        using var noGrad = no_grad();
        foreach (var (p, entry, dim) in plans)
        {
            using var scope = NewDisposeScope();
            p.copy_(ReadLocal(reader, entry, p.shape, dim, tp.Rank));
        }
    }

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
        SaveParameters(module.named_parameters().Select(p => (p.name, p.parameter)), path, mpu ?? (module as PipelineModule)?.Grid, options);
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

    /// <summary>This rank's slice (or the whole tensor) of a file entry, padding rows beyond the file's vocabulary with zeros.</summary>
    private static Tensor ReadLocal(SafeTensorsReader reader, SafeTensorEntry entry, long[] local, int dim, int tpRank)
    {
        if (dim < 0)
        {
            var whole = reader.Read(entry.Name);
            return local.Length == 0 || whole.shape[0] == local[0] ? whole : PadRows(whole, local);
        }
        long n = local[dim], start = tpRank * n;
        if (dim != 0)
        {
            var slice = reader.ReadSlice(entry.Name, dim, start, n);
            return slice.shape[0] == local[0] ? slice : PadRows(slice, local);
        }
        long available = Math.Clamp(entry.Shape[0] - start, 0, n);
        if (available == n) return reader.ReadSlice(entry.Name, 0, start, n);
        var rows = reader.ReadSlice(entry.Name, 0, Math.Min(start, entry.Shape[0]), available);
        return PadRows(rows, local);
    }

    private static Tensor PadRows(Tensor rows, long[] shape)
    {
        var padded = zeros(shape, rows.dtype);
        if (rows.shape[0] > 0) padded.narrow(0, 0, rows.shape[0]).copy_(rows);
        return padded;
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

    private static string Show(long[] shape) => $"[{string.Join(", ", shape)}]";
}
