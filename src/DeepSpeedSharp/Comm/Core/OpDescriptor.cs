using System.Runtime.InteropServices;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>Operation codes carried in descriptors so ranks can check they run the same operation.</summary>
internal enum OpCode
{
    Barrier = 1, AllReduce, ReduceScatter, AllGather, Broadcast, Reduce, AllToAll, Send, Recv,
}

/// <summary>
/// What a rank believes the operation at a sequence number is. Ranks exchange descriptors at the start of each
/// collective; any difference raises an error naming both sides. 40 bytes, blittable.
/// </summary>
[StructLayout(LayoutKind.Sequential, Pack = 8)]
internal struct OpDescriptor : IEquatable<OpDescriptor>
{
    public const int SizeInBytes = 40;
    public int Code;
    public int DType;
    public long Count;
    public long Extra;
    public long Seq;
    public long Magic;

    public OpDescriptor(OpCode code, int dtype, long count, long extra, long seq)
    {
        Code = (int)code; DType = dtype; Count = count; Extra = extra; Seq = seq; Magic = 0x445353436f6d6d31; // "DSSComm1"
    }

    public readonly bool Equals(OpDescriptor o) => Code == o.Code && DType == o.DType && Count == o.Count && Extra == o.Extra && Seq == o.Seq && Magic == o.Magic;
    public override readonly bool Equals(object? obj) => obj is OpDescriptor o && Equals(o);
    public override readonly int GetHashCode() => HashCode.Combine(Code, DType, Count, Extra, Seq);

    public readonly string Describe()
    {
        if (Magic != 0x445353436f6d6d31) return "an unrecognised message (not a DeepSpeedSharp descriptor)";
        var dt = DType < 0 ? "-" : ((TorchSharp.torch.ScalarType)DType).ToString();
        string extra = (OpCode)Code switch
        {
            OpCode.AllReduce or OpCode.ReduceScatter => $", op={(ReduceOp)Extra}",
            OpCode.Reduce => $", op={(ReduceOp)(Extra & 0xF)}, dst={Extra >> 4}",
            OpCode.Broadcast => $", src={Extra}",
            OpCode.Send or OpCode.Recv => $", tag={Extra}",
            OpCode.AllGather when Extra != 0 => ", uneven",
            _ => "",
        };
        return $"{OpName((OpCode)Code)}(seq={Seq}, dtype={dt}, count={Count}{extra})";
    }

    public static string OpName(OpCode c) => c switch
    {
        OpCode.Barrier => "barrier",
        OpCode.AllReduce => "all_reduce",
        OpCode.ReduceScatter => "reduce_scatter",
        OpCode.AllGather => "all_gather",
        OpCode.Broadcast => "broadcast",
        OpCode.Reduce => "reduce",
        OpCode.AllToAll => "all_to_all",
        OpCode.Send => "send",
        OpCode.Recv => "recv",
        _ => $"op#{(int)c}",
    };
}

/// <summary>
/// The operation being executed: its name, the sequence number the backend's protocol uses (a hierarchical backend's
/// internal steps have their own), its descriptor, its deadline, and its <see cref="OpLabel"/> (what messages call it).
/// </summary>
internal readonly record struct OpContext(string Name, long Seq, OpDescriptor Descriptor, DateTime Deadline, OpLabel Label)
{
    /// <summary>The number a <see cref="DistributedException"/> carries: a collective's group sequence number, a point-to-point operation's message number.</summary>
    public long ErrorSeq => Label.Peer >= 0 ? Seq : Label.Seq;
}
