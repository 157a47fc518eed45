using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Pipeline;

/// <summary>
/// Activations and gradients between adjacent stages, over the grid's two-rank stage groups. The first message in each
/// direction carries a header (dtype and shape), which the receiver caches; later messages are the data alone, until
/// <see cref="ResetShapes"/> (DeepSpeed's <c>reset_activation_shape</c>) for a model whose activation shapes change.
/// <para>With tensor parallelism and <c>pipe_partitioned</c> (activations) or <c>grad_partitioned</c> (gradients), the
/// tensor — identical on every tensor rank — is sent as one slice per tensor rank and all-gathered over the tensor group
/// on arrival, so each link carries 1/tp of it; otherwise each rank sends the whole tensor.</para>
/// <para>Sends are asynchronous (they run on the communication layer's send worker, in order); the tensors are kept
/// alive until <see cref="WaitForSends"/>. Receives block. Messages are named by the part boundary they cross (boundary j
/// lies between parts j − 1 and j), so that with virtual stages each boundary has its own cached shape; activations
/// always go to the next stage and gradients to the previous one (wrapping around between the last and first stage), and
/// with virtual stages gradients travel in their own groups, so that on two stages an activation and a gradient going
/// the same way cannot be taken for each other.</para>
/// </summary>
internal sealed class StageChannel : IDisposable
{
    private const int HeaderLength = 10; // dtype, rank, up to 8 dimensions
    private readonly PipelineParallelGrid grid;
    private readonly ProcessGroup? tensorGroup;
    private readonly bool partitionActivations, partitionGradients;
    private readonly List<(Work Work, Tensor Tensor)> pending = new();
    private readonly HashSet<int> activationHeadersSent = new(), gradHeadersSent = new();
    private readonly Dictionary<int, (ScalarType DType, long[] Shape)> activationShapes = new(), gradShapes = new();
    private readonly Device device;
    private readonly Dictionary<int, ProcessGroup> gradGroups = new();
    private readonly List<ProcessGroup> owned = new();

    /// <param name="grid">The topology.</param>
    /// <param name="pipePartitioned">Slice activations over the tensor ranks.</param>
    /// <param name="gradPartitioned">Slice gradients over the tensor ranks.</param>
    /// <param name="device">Where received tensors live.</param>
    /// <param name="separateGradientGroups">Send gradients through groups of their own (virtual stages); every rank must pass the same.</param>
    public StageChannel(PipelineParallelGrid grid, bool pipePartitioned, bool gradPartitioned, Device device, bool separateGradientGroups)
    {
        this.grid = grid;
        this.device = device;
        var tp = grid.GetTensorModelParallelGroup();
        tensorGroup = tp.Size > 1 ? tp : null;
        partitionActivations = pipePartitioned && tensorGroup != null;
        partitionGradients = gradPartitioned && tensorGroup != null;
        if (!separateGradientGroups) return;
        foreach (var pair in PipelineParallelGrid.StagePairs(grid.Topology)) // the same order on every rank
        {
            var g = Dist.NewGroup(pair);
            owned.Add(g);
            if (g.IsMember) gradGroups[pair.Single(r => r != grid.GlobalRank)] = g;
        }
    }

    private int Next => grid.StageToGlobal((grid.StageId + 1) % grid.PipeParallelSize);
    private int Prev => grid.StageToGlobal((grid.StageId + grid.PipeParallelSize - 1) % grid.PipeParallelSize);

    /// <summary>Sends an output activation across part boundary <paramref name="boundary"/> to the next stage.</summary>
    public void SendActivation(Tensor activation, int boundary) =>
        Send(activation, Next, ActivationGroup(Next), activationHeadersSent, boundary, partitionActivations);

    /// <summary>Receives the input activation crossing part boundary <paramref name="boundary"/> from the previous stage.</summary>
    public Tensor RecvActivation(int boundary) => Recv(Prev, ActivationGroup(Prev), activationShapes, boundary, partitionActivations);

    /// <summary>Sends the gradient of an input back across part boundary <paramref name="boundary"/> to the previous stage.</summary>
    public void SendGrad(Tensor grad, int boundary) => Send(grad, Prev, GradGroup(Prev), gradHeadersSent, boundary, partitionGradients);

    /// <summary>Receives the gradient of an output coming back across part boundary <paramref name="boundary"/> from the next stage.</summary>
    public Tensor RecvGrad(int boundary) => Recv(Next, GradGroup(Next), gradShapes, boundary, partitionGradients);

    private ProcessGroup ActivationGroup(int peer) => grid.GetP2PGroup(peer);

    private ProcessGroup GradGroup(int peer) => gradGroups.TryGetValue(peer, out var g) ? g : grid.GetP2PGroup(peer);

    /// <summary>Forgets the cached shapes: the next message across each boundary carries a header again.</summary>
    public void ResetShapes()
    {
        activationHeadersSent.Clear();
        gradHeadersSent.Clear();
        activationShapes.Clear();
        gradShapes.Clear();
    }

    /// <summary>Waits until every send has left and releases the tensors it kept.</summary>
    public void WaitForSends()
    {
        foreach (var (work, tensor) in pending)
        {
            work.Wait();
            tensor.Dispose();
        }
        pending.Clear();
    }

    private void Send(Tensor value, int peer, ProcessGroup group, HashSet<int> headersSent, int boundary, bool partitioned)
    {
        if (headersSent.Add(boundary))
        {
            if (value.dim() > HeaderLength - 2)
                throw new ArgumentException($"a pipeline stage's output has {value.dim()} dimensions; at most {HeaderLength - 2} can be sent between stages");
            var header = new long[HeaderLength];
            header[0] = (long)value.dtype;
            header[1] = value.dim();
            for (int d = 0; d < value.dim(); d++) header[2 + d] = value.shape[d];
            var h = tensor(header).DetachFromDisposeScope();
            pending.Add((group.SendAsync(h, peer), h));
        }
        var payload = (partitioned ? Slice(value.detach()) : value.detach().contiguous()).DetachFromDisposeScope();
        pending.Add((group.SendAsync(payload, peer), payload));
    }

    private Tensor Recv(int peer, ProcessGroup group, Dictionary<int, (ScalarType DType, long[] Shape)> shapes, int boundary, bool partitioned)
    {
        if (!shapes.TryGetValue(boundary, out var cached))
        {
            using var h = zeros(HeaderLength, ScalarType.Int64);
            group.Recv(h, peer);
            var header = h.data<long>().ToArray();
            shapes[boundary] = cached = ((ScalarType)header[0], header.Skip(2).Take((int)header[1]).ToArray());
        }
        var (dtype, shape) = cached;
        if (!partitioned)
        {
            var whole = empty(shape, dtype, device);
            group.Recv(whole, peer);
            return whole;
        }
        long numel = shape.Aggregate(1L, (a, b) => a * b);
        long chunk = (numel + tensorGroup!.Size - 1) / tensorGroup.Size;
        using var part = empty(chunk, dtype, device);
        group.Recv(part, peer);
        using var gathered = empty(chunk * tensorGroup.Size, dtype, device);
        tensorGroup.AllGather(gathered, part);
        return gathered.narrow(0, 0, numel).view(shape).clone();
    }

    /// <summary>This tensor rank's slice of the flattened tensor, padded so every rank's slice has the same length.</summary>
    private Tensor Slice(Tensor tensor)
    {
        long numel = tensor.numel();
        int size = tensorGroup!.Size, rank = tensorGroup.Rank;
        long chunk = (numel + size - 1) / size;
        var flat = tensor.contiguous().view(-1);
        long start = Math.Min(numel, chunk * rank), length = Math.Max(0, Math.Min(chunk, numel - start));
        var slice = zeros(chunk, tensor.dtype, tensor.device);
        if (length > 0) slice.narrow(0, 0, length).copy_(flat.narrow(0, start, length));
        return slice;
    }

    public void Dispose()
    {
        WaitForSends();
        foreach (var g in owned) g.Dispose();
        owned.Clear();
    }
}
