using DeepSpeedSharp.Comm;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.TensorParallel;

/// <summary>
/// Megatron's <c>_VocabParallelCrossEntropy</c>: the cross-entropy of logits split by vocabulary across the tensor ranks,
/// without gathering them. Forward: the row maximum, the target's logit and the sum of exponentials are each combined
/// over the tensor group (max, sum, sum); loss = log Σexp − target logit. Backward: softmax minus one-hot (on the rank
/// holding the target), times the incoming gradient. Inputs: [logits [N, V/tp] fp32, targets [N], group, vocab start].
/// </summary>
internal sealed class VocabParallelCrossEntropyFunction : autograd.SingleTensorFunction<VocabParallelCrossEntropyFunction>
{
    public override string Name => "VocabParallelCrossEntropy";

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var logits = (Tensor)vars[0];
        var targets = (Tensor)vars[1];
        var group = (ProcessGroup?)vars[2];
        long start = (long)vars[3], end = start + logits.shape[1];
        using var scope = NewDisposeScope();
        var max = logits.amax(new long[] { 1 });
        if (group != null) group.AllReduce(max, ReduceOp.Max);
        var shifted = logits - max.unsqueeze(1);
        var outside = targets.lt(start).logical_or(targets.ge(end));
        var local = (targets - start).masked_fill(outside, 0);
        var predicted = shifted.gather(1, local.unsqueeze(1)).squeeze(1).masked_fill(outside, 0.0).contiguous();
        var exp = shifted.exp();
        var sumExp = exp.sum(new long[] { 1 }).contiguous();
        if (group != null)
        {
            group.AllReduce(predicted, ReduceOp.Sum);
            group.AllReduce(sumExp, ReduceOp.Sum);
        }
        var loss = sumExp.log() - predicted;
        var softmax = exp.div_(sumExp.unsqueeze(1));
        ctx.save_for_backward(new List<Tensor> { softmax.MoveToOuterDisposeScope(), local.MoveToOuterDisposeScope(), outside.MoveToOuterDisposeScope() });
        return loss.MoveToOuterDisposeScope();
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad)
    {
        var saved = ctx.get_saved_variables();
        var (softmax, local, outside) = (saved[0], saved[1], saved[2]);
        using var scope = NewDisposeScope();
        var inside = outside.logical_not().to(softmax.dtype).unsqueeze(1);
        var g = softmax.clone().scatter_add_(1, local.unsqueeze(1), inside.neg()).mul_(grad.unsqueeze(1));
        return new List<Tensor> { g.MoveToOuterDisposeScope(), null!, null!, null! };
    }
}
