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
/// alive until <see cref="WaitForSends"/>. Receives block.</para>
/// </summary>
internal sealed class StageChannel
{
    private const int HeaderLength = 10; // dtype, rank, up to 8 dimensions
    private readonly PipelineParallelGrid grid;
    private readonly ProcessGroup? tensorGroup;
    private readonly bool partitionActivations, partitionGradients;
    private readonly List<(Work Work, Tensor Tensor)> pending = new();
    private bool activationHeaderSent, gradHeaderSent;
    private (ScalarType DType, long[] Shape)? activationShape, gradShape;

    private readonly Device device;

    public StageChannel(PipelineParallelGrid grid, bool pipePartitioned, bool gradPartitioned, Device device)
    {
        this.grid = grid;
        this.device = device;
        var tp = grid.GetTensorModelParallelGroup();
        tensorGroup = tp.Size > 1 ? tp : null;
        partitionActivations = pipePartitioned && tensorGroup != null;
        partitionGradients = gradPartitioned && tensorGroup != null;
    }

    private int Next => grid.StageToGlobal(grid.StageId + 1);
    private int Prev => grid.StageToGlobal(grid.StageId - 1);

    /// <summary>Sends an output activation to the next stage.</summary>
    public void SendActivation(Tensor activation) => Send(activation, Next, ref activationHeaderSent, partitionActivations);

    /// <summary>Receives this stage's input activation from the previous stage.</summary>
    public Tensor RecvActivation() => Recv(Prev, ref activationShape, partitionActivations);

    /// <summary>Sends the gradient of this stage's input to the previous stage.</summary>
    public void SendGrad(Tensor grad) => Send(grad, Prev, ref gradHeaderSent, partitionGradients);

    /// <summary>Receives the gradient of this stage's output from the next stage.</summary>
    public Tensor RecvGrad() => Recv(Next, ref gradShape, partitionGradients);

    /// <summary>Forgets the cached shapes: the next message in each direction carries a header again.</summary>
    public void ResetShapes()
    {
        activationHeaderSent = gradHeaderSent = false;
        activationShape = gradShape = null;
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

    private void Send(Tensor value, int peer, ref bool headerSent, bool partitioned)
    {
        var group = grid.GetP2PGroup(peer);
        if (!headerSent)
        {
            if (value.dim() > HeaderLength - 2)
                throw new ArgumentException($"a pipeline stage's output has {value.dim()} dimensions; at most {HeaderLength - 2} can be sent between stages");
            var header = new long[HeaderLength];
            header[0] = (long)value.dtype;
            header[1] = value.dim();
            for (int d = 0; d < value.dim(); d++) header[2 + d] = value.shape[d];
            var h = tensor(header).DetachFromDisposeScope();
            pending.Add((group.SendAsync(h, peer), h));
            headerSent = true;
        }
        var payload = (partitioned ? Slice(value.detach()) : value.detach().contiguous()).DetachFromDisposeScope();
        pending.Add((group.SendAsync(payload, peer), payload));
    }

    private Tensor Recv(int peer, ref (ScalarType DType, long[] Shape)? cached, bool partitioned)
    {
        var group = grid.GetP2PGroup(peer);
        if (cached == null)
        {
            using var h = zeros(HeaderLength, ScalarType.Int64);
            group.Recv(h, peer);
            var header = h.data<long>().ToArray();
            cached = ((ScalarType)header[0], header.Skip(2).Take((int)header[1]).ToArray());
        }
        var (dtype, shape) = cached.Value;
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
}
