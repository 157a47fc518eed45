using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Weights;

/// <summary>
/// This process as tensor rank <paramref name="tensorRank"/> of <paramref name="tensorSize"/> and data-parallel rank
/// <paramref name="dataRank"/> of <paramref name="dataSize"/>, for code that only reads ranks and sizes (whole-model
/// weights never communicate when loading); the groups are a one-process placeholder.
/// </summary>
internal sealed class PlacedRank(int tensorRank, int tensorSize, int dataRank = 0, int dataSize = 1) : IModelParallelUnit
{
    private readonly ProcessGroup group = new SingleProcessGroup(0, TimeSpan.FromSeconds(5), new CommsLogger());
    public ProcessGroup GetModelParallelGroup() => group;
    public int GetModelParallelRank() => tensorRank;
    public int GetModelParallelWorldSize() => tensorSize;
    public ProcessGroup GetDataParallelGroup() => group;
    public int GetDataParallelRank() => dataRank;
    public int GetDataParallelWorldSize() => dataSize;

    /// <summary>Equal shape and values, bit for bit.</summary>
    public static bool Same(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.allclose(b, 0, 0);
}
