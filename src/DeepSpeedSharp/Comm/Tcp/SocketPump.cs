using System.Net.Sockets;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Tcp;

/// <summary>
/// Moves bytes over non-blocking sockets: sends one buffer while receiving another, waiting in Select when
/// neither side can progress, and checking the peers and the deadline while it waits. One per worker thread;
/// its Select lists are reused, so a transfer allocates nothing.
/// </summary>
internal sealed unsafe class SocketPump
{
    private readonly List<Socket> _read = new(1), _write = new(1);
    private readonly TcpProcessGroup _group;

    public SocketPump(TcpProcessGroup group) => _group = group;

    public void Exchange(int sendPeer, Socket? ss, byte* sp, long sl, int recvPeer, Socket? rs, byte* rp, long rl, in OpContext ctx)
    {
        while (sl > 0 || rl > 0)
        {
            bool progress = false;
            if (sl > 0)
            {
                int n = ss!.Send(new ReadOnlySpan<byte>(sp, (int)Math.Min(sl, 1 << 22)), SocketFlags.None, out var err);
                if (err == SocketError.Success && n > 0) { sp += n; sl -= n; progress = true; }
                else if (err != SocketError.WouldBlock) throw _group.PeerFailed(ctx, sendPeer, err.ToString());
            }
            if (rl > 0)
            {
                int n = rs!.Receive(new Span<byte>(rp, (int)Math.Min(rl, 1 << 22)), SocketFlags.None, out var err);
                if (err == SocketError.Success)
                {
                    if (n == 0) throw _group.PeerFailed(ctx, recvPeer, "connection closed");
                    rp += n; rl -= n; progress = true;
                }
                else if (err != SocketError.WouldBlock) throw _group.PeerFailed(ctx, recvPeer, err.ToString());
            }
            if (progress) continue;
            _read.Clear(); _write.Clear();
            if (rl > 0) _read.Add(rs!);
            if (sl > 0) _write.Add(ss!);
            Socket.Select(_read.Count > 0 ? _read : null, _write.Count > 0 ? _write : null, null, 200_000);
            if (_read.Count == 0 && _write.Count == 0) _group.CheckHealth(ctx, rl > 0 ? recvPeer : sendPeer);
        }
    }
}
