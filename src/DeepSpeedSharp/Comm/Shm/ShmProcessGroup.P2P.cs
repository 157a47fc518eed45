using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Shm;

internal sealed unsafe partial class ShmProcessGroup
{
    // Per ordered pair (s→d): written-chunk counter at +0, read-chunk counter at +64, chunk headers at +128/+192.
    private readonly long[] _sendChunks, _recvChunks, _sendMsgs, _recvMsgs;

    private byte* PairCtl(int s, int d) => _pairCtl + ((long)s * _n + d) * ControlBytes;
    private byte* PairBuf(int s, int d, long chunk) => _p2pData + (((long)s * _n + d) * 2 + (chunk & 1)) * _p2pChunk;

    private long Chunks(long bytes) => Math.Max(1, (bytes + _p2pChunk - 1) / _p2pChunk);

    internal override void SendCore(in OpContext ctx0, HostBuffer buf, int dst, int tag)
    {
        long msg = _sendMsgs[dst]++;
        var ctx = ctx0 with { Seq = msg, Descriptor = ctx0.Descriptor with { Seq = msg } };
        byte* ctl = PairCtl(_me, dst);
        long chunks = Chunks(buf.Bytes);
        for (long i = 0; i < chunks; i++)
        {
            long w = _sendChunks[dst];
            WaitFor((long*)(ctl + 64), w - 1, dst, ctx, collective: false); // the buffer's previous chunk was consumed
            long off = i * _p2pChunk, len = Math.Min(_p2pChunk, buf.Bytes - off);
            Copy(buf.Ptr + off, PairBuf(_me, dst, w), len);
            *(OpDescriptor*)(ctl + 128 + (w & 1) * 64) = ctx.Descriptor;
            SharedCounter.Post(ctl, w + 1);
            _sendChunks[dst] = w + 1;
        }
    }

    internal override void RecvCore(in OpContext ctx0, HostBuffer buf, int src, int tag)
    {
        long msg = _recvMsgs[src]++;
        var expect = ctx0.Descriptor with { Code = (int)OpCode.Send, Seq = msg };
        var ctx = ctx0 with { Seq = msg };
        byte* ctl = PairCtl(src, _me);
        long chunks = Chunks(buf.Bytes);
        for (long i = 0; i < chunks; i++)
        {
            long r = _recvChunks[src];
            WaitFor((long*)ctl, r + 1, src, ctx, collective: false);
            var got = *(OpDescriptor*)(ctl + 128 + (r & 1) * 64);
            if (!got.Equals(expect))
                throw new DistributedException(ctx.Name, msg, [],
                    $"point-to-point mismatch on message {msg} from rank {GetGlobalRank(src)} to rank {GlobalRank}: the receiver expects {expect.Describe()} but the sender sent {got.Describe()}.");
            long off = i * _p2pChunk, len = Math.Min(_p2pChunk, buf.Bytes - off);
            Copy(PairBuf(src, _me, r), buf.Ptr + off, len);
            SharedCounter.Post(ctl + 64, r + 1);
            _recvChunks[src] = r + 1;
        }
    }
}
