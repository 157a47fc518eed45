using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Tcp;

internal sealed unsafe partial class TcpProcessGroup
{
    private readonly long[] _sendMsgs, _recvMsgs;

    internal override void SendCore(in OpContext ctx0, HostBuffer buf, int dst, int tag)
    {
        long msg = _sendMsgs[dst]++;
        var ctx = ctx0 with { Seq = msg };
        var header = ctx0.Descriptor with { Seq = msg };
        var s = _mesh.PointToPoint[dst];
        _sendPump.Exchange(dst, s, (byte*)&header, OpDescriptor.SizeInBytes, dst, null, null, 0, ctx);
        _sendPump.Exchange(dst, s, buf.Ptr, buf.Bytes, dst, null, null, 0, ctx);
    }

    internal override void RecvCore(in OpContext ctx0, HostBuffer buf, int src, int tag)
    {
        long msg = _recvMsgs[src]++;
        var ctx = ctx0 with { Seq = msg };
        var expect = ctx0.Descriptor with { Code = (int)OpCode.Send, Seq = msg };
        OpDescriptor got;
        var s = _mesh.PointToPoint[src];
        _recvPump.Exchange(src, null, null, 0, src, s, (byte*)&got, OpDescriptor.SizeInBytes, ctx);
        if (!got.Equals(expect))
            throw new DistributedException(ctx.Name, msg, [],
                $"point-to-point mismatch on message {msg} from rank {GetGlobalRank(src)} to rank {GlobalRank}: the receiver expects {expect.Describe()} but the sender sent {got.Describe()}.");
        _recvPump.Exchange(src, null, null, 0, src, s, buf.Ptr, buf.Bytes, ctx);
    }
}
