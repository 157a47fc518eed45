using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using DeepSpeedSharp.Comm.Store;

namespace DeepSpeedSharp.Comm.Tcp;

/// <summary>
/// Two non-blocking TCP connections between every pair of group members (one for collectives, one for
/// point-to-point). Lower ranks listen, higher ranks connect; each connection opens with a fixed-size hello
/// carrying the job token, the group prefix hash and the connecting rank, checked before it is accepted.
/// </summary>
internal sealed class TcpMesh : IDisposable
{
    private const int HelloBytes = 8 + 4 + 4 + 32;

    public Socket?[] Collective { get; }
    public Socket?[] PointToPoint { get; }

    private TcpMesh(int n)
    {
        Collective = new Socket?[n];
        PointToPoint = new Socket?[n];
    }

    public static TcpMesh Build(CommRuntime rt, string prefix, int[] ranks)
    {
        int n = ranks.Length, me = Array.IndexOf(ranks, rt.Env.Rank);
        var store = rt.Store!;
        var mesh = new TcpMesh(n);
        var groupHash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(rt.JobId + prefix));
        var tokenHash = SHA256.HashData(rt.Token);
        using var listener = new Socket(rt.LocalAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(rt.LocalAddress, 0));
        listener.Listen(2 * n + 16);
        var ep = (IPEndPoint)listener.LocalEndPoint!;
        store.Set($"{prefix}addr/{me}", $"{ep.Address}|{ep.Port}");
        var deadline = DateTime.UtcNow + rt.Timeout;
        Span<byte> hello = stackalloc byte[HelloBytes];
        try
        {
            for (int peer = 0; peer < me; peer++)
            {
                var parts = rt.AwaitKey($"{prefix}addr/{peer}").Split('|');
                var target = new IPEndPoint(IPAddress.Parse(parts[0]), int.Parse(parts[1]));
                for (int channel = 0; channel < 2; channel++)
                {
                    var s = new Socket(target.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                    s.Connect(target);
                    BinaryPrimitives.WriteInt64LittleEndian(hello, BinaryPrimitives.ReadInt64LittleEndian(groupHash));
                    BinaryPrimitives.WriteInt32LittleEndian(hello[8..], me);
                    BinaryPrimitives.WriteInt32LittleEndian(hello[12..], channel);
                    tokenHash.CopyTo(hello[16..]);
                    StoreProtocol.SendAll(s, hello);
                    mesh.Set(channel, peer, s);
                }
            }
            int expected = 2 * (n - 1 - me);
            while (expected > 0)
            {
                if (!listener.Poll(200_000, SelectMode.SelectRead))
                {
                    if (DateTime.UtcNow > deadline) throw new TimeoutException($"rank {rt.Env.Rank}: group {prefix} peers did not connect within {rt.Timeout}.");
                    rt.CheckCreation();
                    continue;
                }
                var s = listener.Accept();
                s.ReceiveTimeout = 10_000;
                try { StoreProtocol.ReceiveAll(s, hello); }
                catch (Exception e) when (e is SocketException or EndOfStreamException) { s.Dispose(); continue; }
                int peer = BinaryPrimitives.ReadInt32LittleEndian(hello[8..]);
                int channel = BinaryPrimitives.ReadInt32LittleEndian(hello[12..]);
                bool ok = BinaryPrimitives.ReadInt64LittleEndian(hello) == BinaryPrimitives.ReadInt64LittleEndian(groupHash)
                          && CryptographicOperations.FixedTimeEquals(hello[16..], tokenHash)
                          && peer > me && peer < n && channel is 0 or 1
                          && (channel == 0 ? mesh.Collective[peer] : mesh.PointToPoint[peer]) == null;
                if (!ok) { s.Dispose(); continue; } // stray or unauthenticated connection
                mesh.Set(channel, peer, s);
                expected--;
            }
        }
        catch
        {
            mesh.Dispose();
            throw;
        }
        return mesh;
    }

    private void Set(int channel, int peer, Socket s)
    {
        s.NoDelay = true;
        s.SendBufferSize = 4 << 20;
        s.ReceiveBufferSize = 4 << 20;
        s.ReceiveTimeout = 0;
        s.Blocking = false;
        (channel == 0 ? Collective : PointToPoint)[peer] = s;
    }

    /// <summary>Peers whose connection was closed by the other side (the process died or closed the group).</summary>
    public List<int> ClosedPeers()
    {
        var closed = new List<int>();
        for (int p = 0; p < Collective.Length; p++)
        {
            foreach (var s in new[] { Collective[p], PointToPoint[p] })
            {
                if (s == null) continue;
                try
                {
                    if (s.Poll(0, SelectMode.SelectError) || (s.Poll(0, SelectMode.SelectRead) && s.Available == 0)) { closed.Add(p); break; }
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException) { closed.Add(p); break; }
            }
        }
        return closed;
    }

    public void Dispose()
    {
        foreach (var s in Collective) s?.Dispose();
        foreach (var s in PointToPoint) s?.Dispose();
    }
}
