using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Megatron's <c>copy_to_tensor_model_parallel_region</c>: identity in forward; in backward the input gradient is
/// summed over the tensor-parallel group (every tensor rank used the same input for its slice of the next layer).
/// </summary>
internal sealed class CopyToTensorParallelRegion : autograd.SingleTensorFunction<CopyToTensorParallelRegion>
{
    public override string Name => "CopyToTensorParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ctx.save_data("group", vars[1]);
        var x = (Tensor)vars[0];
        return x.view_as(x);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        var group = (ProcessGroup)ctx.get_data("group");
        var grad = gradOutput.clone();
        group.AllReduce(grad, ReduceOp.Sum);
        return new List<Tensor> { grad, null! };
    }
}

/// <summary>
/// Megatron's <c>reduce_from_tensor_model_parallel_region</c>: in forward the partial outputs of the tensor ranks are
/// summed over the tensor-parallel group (after a row-parallel layer); identity in backward.
/// </summary>
internal sealed class ReduceFromTensorParallelRegion : autograd.SingleTensorFunction<ReduceFromTensorParallelRegion>
{
    public override string Name => "ReduceFromTensorParallelRegion";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var sum = ((Tensor)vars[0]).clone();
        ((ProcessGroup)vars[1]).AllReduce(sum, ReduceOp.Sum);
        return sum;
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput) =>
        new() { gradOutput.view_as(gradOutput), null! };
}
