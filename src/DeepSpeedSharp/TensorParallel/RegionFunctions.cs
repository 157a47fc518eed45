using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>Megatron's <c>copy_to_tensor_model_parallel_region</c>: identity forward, all-reduce of the gradient backward.</summary>
internal sealed class CopyToRegion : autograd.SingleTensorFunction<CopyToRegion>
{
    public override string Name => "CopyToTensorParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        var x = (Tensor)vars[0];
        return x.view_as(x);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { RegionOps.AllReduce(grad, (ProcessGroup)ctx.get_data("group")), null! };
}

/// <summary>Megatron's <c>reduce_from_tensor_model_parallel_region</c>: all-reduce forward, identity backward.</summary>
internal sealed class ReduceFromRegion : autograd.SingleTensorFunction<ReduceFromRegion>
{
    public override string Name => "ReduceFromTensorParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars) =>
        RegionOps.AllReduce((Tensor)vars[0], (ProcessGroup)vars[1]);

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) => new() { grad.view_as(grad), null! };
}

/// <summary>
/// A region that moves a tensor along one dimension over a group: what forward does (<see cref="Forward"/>) and what
/// backward does to the gradient (<see cref="Backward"/>). Inputs: [tensor, group, dim].
/// </summary>
internal abstract class DimensionRegion<T> : autograd.SingleTensorFunction<T> where T : DimensionRegion<T>, new()
{
    protected abstract Tensor Forward(Tensor x, ProcessGroup group, int dim);

    protected abstract Tensor Backward(Tensor grad, ProcessGroup group, int dim);

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        ctx.save_data("dim", vars[2]);
        return Forward((Tensor)vars[0], (ProcessGroup)vars[1], (int)vars[2]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { Backward(grad, (ProcessGroup)ctx.get_data("group"), (int)ctx.get_data("dim")), null!, null! };
}

/// <summary>Megatron's <c>scatter_to_*_region</c>: keep this rank's chunk along a dimension forward, all-gather backward.</summary>
internal sealed class ScatterToRegion : DimensionRegion<ScatterToRegion>
{
    public override string Name => "ScatterToParallelRegion";
    protected override Tensor Forward(Tensor x, ProcessGroup group, int dim) => RegionOps.Split(x, group, dim);
    protected override Tensor Backward(Tensor grad, ProcessGroup group, int dim) => RegionOps.Gather(grad, group, dim);
}

/// <summary>Megatron's <c>gather_from_*_region</c>: all-gather along a dimension forward, keep this rank's chunk of the gradient backward.</summary>
internal sealed class GatherFromRegion : DimensionRegion<GatherFromRegion>
{
    public override string Name => "GatherFromParallelRegion";
    protected override Tensor Forward(Tensor x, ProcessGroup group, int dim) => RegionOps.Gather(x, group, dim);
    protected override Tensor Backward(Tensor grad, ProcessGroup group, int dim) => RegionOps.Split(grad, group, dim);
}

/// <summary>
/// Sequence parallelism's all-gather (<c>gather_from_sequence_parallel_region</c>): all-gather along the sequence
/// forward, reduce-scatter of the gradient backward (each rank used the whole sequence for its slice of the layer).
/// </summary>
internal sealed class GatherFromSequenceRegion : DimensionRegion<GatherFromSequenceRegion>
{
    public override string Name => "GatherFromSequenceParallelRegion";
    protected override Tensor Forward(Tensor x, ProcessGroup group, int dim) => RegionOps.Gather(x, group, dim);
    protected override Tensor Backward(Tensor grad, ProcessGroup group, int dim) => RegionOps.ReduceScatter(grad, group, dim);
}

/// <summary>
/// Sequence parallelism's reduce-scatter (<c>reduce_scatter_to_sequence_parallel_region</c>): the partial sums of the
/// tensor ranks are summed and each keeps its chunk of the sequence forward; all-gather of the gradient backward.
/// </summary>
internal sealed class ReduceScatterToSequenceRegion : DimensionRegion<ReduceScatterToSequenceRegion>
{
    public override string Name => "ReduceScatterToSequenceParallelRegion";
    protected override Tensor Forward(Tensor x, ProcessGroup group, int dim) => RegionOps.ReduceScatter(x, group, dim);
    protected override Tensor Backward(Tensor grad, ProcessGroup group, int dim) => RegionOps.Gather(grad, group, dim);
}
