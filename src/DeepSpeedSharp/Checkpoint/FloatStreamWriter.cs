using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Writes float32 values to a stream as float32, bfloat16 or float16 (<see cref="TensorElements.FromFloat"/>), through
/// one reused buffer of <paramref name="capacity"/> elements.
/// </summary>
internal sealed class FloatStreamWriter(Stream output, ScalarType type, int capacity)
{
    private readonly byte[] buffer = new byte[Math.Max(1, capacity) * (int)SafeTensors.ElementSize(type)];

    /// <summary>Converts and writes <paramref name="values"/>.</summary>
    public void Write(ReadOnlySpan<float> values)
    {
        int size = (int)SafeTensors.ElementSize(type), chunk = buffer.Length / size;
        for (int done = 0; done < values.Length; done += chunk)
        {
            var part = values.Slice(done, Math.Min(chunk, values.Length - done));
            var bytes = buffer.AsSpan(0, part.Length * size);
            TensorElements.FromFloat(part, type, bytes);
            output.Write(bytes);
        }
    }
}
