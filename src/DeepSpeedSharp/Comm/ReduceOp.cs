namespace DeepSpeedSharp.Comm;

/// <summary>How a reducing collective combines the ranks' values (torch.distributed.ReduceOp).</summary>
public enum ReduceOp
{
    /// <summary>Element-wise sum.</summary>
    Sum,
    /// <summary>Element-wise sum divided by the group size (floating-point dtypes only).</summary>
    Avg,
    /// <summary>Element-wise maximum.</summary>
    Max,
    /// <summary>Element-wise minimum.</summary>
    Min,
}
