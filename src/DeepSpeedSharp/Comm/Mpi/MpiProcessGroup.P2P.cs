using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Mpi;

internal sealed unsafe partial class MpiProcessGroup
{
    private long[]? _sendMsgs, _recvMsgs;

    /// <summary>A descriptor message, then the data in chunks, all with MPI tag 0 so messages between a pair stay in order.</summary>
    internal override void SendCore(in OpContext ctx0, HostBuffer buf, int dst, int tag)
    {
        _sendMsgs ??= new long[_n];
        long msg = _sendMsgs[dst]++;
        var header = ctx0.Descriptor with { Seq = msg };
        _mpi.Check(_mpi.Send(&header, OpDescriptor.SizeInBytes, _mpi.Byte, dst, 0, _p2p), "MPI_Send");
        for (long off = 0; off < buf.Bytes; off += _max)
            _mpi.Check(_mpi.Send(buf.Ptr + off, (int)Math.Min(_max, buf.Bytes - off), _mpi.Byte, dst, 0, _p2p), "MPI_Send");
    }

    internal override void RecvCore(in OpContext ctx0, HostBuffer buf, int src, int tag)
    {
        _recvMsgs ??= new long[_n];
        long msg = _recvMsgs[src]++;
        var expect = ctx0.Descriptor with { Code = (int)OpCode.Send, Seq = msg };
        OpDescriptor got;
        _mpi.Check(_mpi.Recv(&got, OpDescriptor.SizeInBytes, _mpi.Byte, src, 0, _p2p, _mpi.StatusIgnore), "MPI_Recv");
        if (!got.Equals(expect))
            throw new DistributedException(ctx0.Name, msg, [],
                $"point-to-point mismatch on message {msg} from rank {GetGlobalRank(src)} to rank {GlobalRank}: the receiver expects {expect.Describe()} but the sender sent {got.Describe()}.");
        for (long off = 0; off < buf.Bytes; off += _max)
            _mpi.Check(_mpi.Recv(buf.Ptr + off, (int)Math.Min(_max, buf.Bytes - off), _mpi.Byte, src, 0, _p2p, _mpi.StatusIgnore), "MPI_Recv");
    }
}
