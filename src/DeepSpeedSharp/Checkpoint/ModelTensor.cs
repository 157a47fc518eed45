using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// One tensor of the whole model a checkpoint holds — a trainable parameter (fp32, possibly merged from tensor-parallel
/// slices) or a buffer / frozen parameter of a module-states file — described by name, stored type and shape, and
/// written on demand, as bytes, in any floating-point output type.
/// </summary>
internal abstract class ModelTensor(string name, ScalarType storedType, long[] shape)
{
    /// <summary>Elements converted per read: the buffer a write holds.</summary>
    protected const int Chunk = 1 << 20;

    /// <summary>The model's own name of the tensor.</summary>
    public string Name => name;

    /// <summary>Its element type in the checkpoint (float32 for trainable parameters).</summary>
    public ScalarType StoredType => storedType;

    /// <summary>Its shape in the whole model.</summary>
    public long[] Shape => shape;

    /// <summary>Its elements.</summary>
    public long Numel => shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>Its type when exported as <paramref name="dtype"/>: floating-point tensors take it, others keep theirs.</summary>
    public ScalarType OutputType(ScalarType dtype) => TensorElements.IsFloatingPoint(storedType) ? dtype : storedType;

    /// <summary>Its layout in a file exported as <paramref name="dtype"/>.</summary>
    public SafeTensorsLayout Layout(ScalarType dtype) => new(name, OutputType(dtype), shape);

    /// <summary>Writes its data, row-major, as <see cref="OutputType"/>(<paramref name="dtype"/>) to <paramref name="output"/>.</summary>
    public abstract void WriteTo(Stream output, ScalarType dtype);
}

/// <summary>
/// A trainable parameter: its fp32 values from the flat ranges of one model-parallel rank, or — split across tensor
/// ranks along <c>partition_dim</c> — the slices of every tensor rank concatenated along that dimension, row by row
/// (for each index of the leading dimensions, each slice's run in tensor-rank order), as <c>torch.cat</c> lays them out.
/// </summary>
internal sealed class MergedParameter : ModelTensor
{
    private readonly IReadOnlyList<(MasterRanges Ranges, CheckpointParameter Param)> slices;
    private readonly int dim;

    /// <param name="name">The parameter's name.</param>
    /// <param name="shape">Its whole shape (the slices' shapes, with dimension <paramref name="dim"/> summed).</param>
    /// <param name="slices">One slice per tensor rank, in rank order, or just the one parameter when it is not split.</param>
    /// <param name="dim">The dimension the slices are concatenated along (ignored for one slice).</param>
    public MergedParameter(string name, long[] shape, IReadOnlyList<(MasterRanges, CheckpointParameter)> slices, int dim)
        : base(name, ScalarType.Float32, shape)
    {
        this.slices = slices;
        this.dim = dim;
    }

    /// <inheritdoc/>
    public override void WriteTo(Stream output, ScalarType dtype)
    {
        var buffer = new float[(int)Math.Min(Chunk, Math.Max(1, Numel))];
        var writer = new FloatStreamWriter(output, OutputType(dtype), buffer.Length);
        if (slices.Count == 1)
        {
            Copy(slices[0].Ranges, slices[0].Param.Offset, slices[0].Param.Numel, buffer, writer);
            return;
        }
        long outer = Shape.Take(dim).Aggregate(1L, (a, b) => a * b), inner = Shape.Skip(dim + 1).Aggregate(1L, (a, b) => a * b);
        for (long o = 0; o < outer; o++)
            foreach (var (ranges, p) in slices)
            {
                long run = p.Shape[dim] * inner;
                Copy(ranges, p.Offset + o * run, run, buffer, writer);
            }
    }

    private static void Copy(MasterRanges ranges, long start, long length, float[] buffer, FloatStreamWriter writer)
    {
        for (long done = 0; done < length; done += buffer.Length)
        {
            var part = buffer.AsSpan(0, (int)Math.Min(buffer.Length, length - done));
            ranges.Read(start + done, part);
            writer.Write(part);
        }
    }
}

/// <summary>A tensor stored whole in a module-states file (a buffer or a frozen parameter), copied or converted as bytes.</summary>
internal sealed class StoredTensor(RawSafeTensorsFile file, SafeTensorsLayout stored) : ModelTensor(stored.Name, stored.Type, stored.Shape)
{
    /// <inheritdoc/>
    public override void WriteTo(Stream output, ScalarType dtype)
    {
        var type = OutputType(dtype);
        int size = (int)SafeTensors.ElementSize(StoredType);
        var bytes = new byte[(int)Math.Min((long)Chunk * size, Math.Max(1, stored.Bytes))];
        var floats = type == StoredType ? null : new float[bytes.Length / size];
        var writer = floats == null ? null : new FloatStreamWriter(output, type, floats.Length);
        for (long done = 0; done < stored.Bytes; done += bytes.Length)
        {
            var part = bytes.AsSpan(0, (int)Math.Min(bytes.Length, stored.Bytes - done));
            file.ReadBytes(Name, done, part);
            if (floats == null)
            {
                output.Write(part);
                continue;
            }
            var values = floats.AsSpan(0, part.Length / size);
            TensorElements.ToFloat(part, StoredType, values);
            writer!.Write(values);
        }
    }
}
