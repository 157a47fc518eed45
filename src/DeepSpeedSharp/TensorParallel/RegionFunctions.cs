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

/// <summary>Megatron's <c>scatter_to_*_region</c>: keep this rank's chunk along a dimension forward, all-gather backward.</summary>
internal sealed class ScatterToRegion : autograd.SingleTensorFunction<ScatterToRegion>
{
    public override string Name => "ScatterToParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        ctx.save_data("dim", vars[2]);
        return RegionOps.Split((Tensor)vars[0], (ProcessGroup)vars[1], (int)vars[2]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { RegionOps.Gather(grad, (ProcessGroup)ctx.get_data("group"), (int)ctx.get_data("dim")), null!, null! };
}

/// <summary>Megatron's <c>gather_from_*_region</c>: all-gather along a dimension forward, keep this rank's chunk of the gradient backward.</summary>
internal sealed class GatherFromRegion : autograd.SingleTensorFunction<GatherFromRegion>
{
    public override string Name => "GatherFromParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        ctx.save_data("dim", vars[2]);
        return RegionOps.Gather((Tensor)vars[0], (ProcessGroup)vars[1], (int)vars[2]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { RegionOps.Split(grad, (ProcessGroup)ctx.get_data("group"), (int)ctx.get_data("dim")), null!, null! };
}

/// <summary>
/// Sequence parallelism's all-gather (<c>gather_from_sequence_parallel_region</c>): all-gather along the sequence
/// forward, reduce-scatter of the gradient backward (each rank used the whole sequence for its slice of the layer).
/// </summary>
internal sealed class GatherFromSequenceRegion : autograd.SingleTensorFunction<GatherFromSequenceRegion>
{
    public override string Name => "GatherFromSequenceParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        ctx.save_data("dim", vars[2]);
        return RegionOps.Gather((Tensor)vars[0], (ProcessGroup)vars[1], (int)vars[2]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { RegionOps.ReduceScatter(grad, (ProcessGroup)ctx.get_data("group"), (int)ctx.get_data("dim")), null!, null! };
}

/// <summary>
/// Sequence parallelism's reduce-scatter (<c>reduce_scatter_to_sequence_parallel_region</c>): the partial sums of the
/// tensor ranks are summed and each keeps its chunk of the sequence forward; all-gather of the gradient backward.
/// </summary>
internal sealed class ReduceScatterToSequenceRegion : autograd.SingleTensorFunction<ReduceScatterToSequenceRegion>
{
    public override string Name => "ReduceScatterToSequenceParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        ctx.save_data("dim", vars[2]);
        return RegionOps.ReduceScatter((Tensor)vars[0], (ProcessGroup)vars[1], (int)vars[2]);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad) =>
        new() { RegionOps.Gather(grad, (ProcessGroup)ctx.get_data("group"), (int)ctx.get_data("dim")), null!, null! };
}
