using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>A connection to the rendezvous store (one request at a time; thread-safe).</summary>
internal sealed class TcpStoreClient : IDisposable
{
    private readonly Socket _socket;
    private readonly object _lock = new();
    private readonly TimeSpan _timeout;

    /// <summary>Connects and authenticates as <paramref name="rank"/> (the store binds the connection to it).</summary>
    public TcpStoreClient(IPAddress address, int port, byte[] token, TimeSpan timeout, int rank)
    {
        _timeout = timeout;
        var deadline = DateTime.UtcNow + timeout;
        DateTime? closedSince = null;
        while (true)
        {
            var s = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                s.Connect(new IPEndPoint(address, port));
                s.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
                StoreHandshake.Client(s, token, $"{address}:{port}", rank);
                s.ReceiveTimeout = 0;
                _socket = s;
                return;
            }
            catch (UnauthorizedAccessException)
            {
                s.Dispose();
                throw;
            }
            catch (SocketException e) when (e.SocketErrorCode != SocketError.TimedOut)
            {
                s.Dispose();
                if (DateTime.UtcNow > deadline)
                    throw new TimeoutException($"could not reach the rendezvous store at {address}:{port} (MASTER_ADDR:MASTER_PORT) within {timeout}: {e.Message}.", e);
                Thread.Sleep(50);
            }
            catch (Exception e) when (e is EndOfStreamException or SocketException)
            {
                // The store closes connections beyond its cap of unauthenticated ones (see TcpStoreServer): try again
                // for a while; a listener that keeps closing (or never answers) is not a store.
                s.Dispose();
                closedSince ??= DateTime.UtcNow;
                if (DateTime.UtcNow > deadline || DateTime.UtcNow - closedSince > HandshakeRetry)
                    throw new UnauthorizedAccessException($"the process listening on {address}:{port} (MASTER_ADDR:MASTER_PORT) closed or stalled every handshake for {HandshakeRetry.TotalSeconds:F0} s: it is not a working rendezvous store.", e);
                Thread.Sleep(100 + Random.Shared.Next(200));
            }
        }
    }

    /// <summary>How long one handshake may wait for the store's answer.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    /// <summary>How long a client keeps retrying handshakes the listener closes or leaves unanswered.</summary>
    public static readonly TimeSpan HandshakeRetry = TimeSpan.FromSeconds(30);

    /// <summary>The local interface address used to reach the store (what peers on other hosts can reach).</summary>
    public IPAddress LocalAddress => ((IPEndPoint)_socket.LocalEndPoint!).Address;

    public void Set(string key, byte[] value) => Call(StoreProtocol.Request(StoreProtocol.Set, key, value));

    public void Set(string key, string value) => Set(key, Encoding.UTF8.GetBytes(value));

    /// <summary>Waits until <paramref name="key"/> exists and returns its value.</summary>
    public byte[] Get(string key, TimeSpan? timeout = null)
    {
        var t = timeout ?? _timeout;
        Span<byte> ms = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(ms, (long)Math.Min(t.TotalMilliseconds, long.MaxValue / 2));
        var reply = Call(StoreProtocol.Request(StoreProtocol.Get, key, ms));
        if (reply[0] != StoreProtocol.Ok) throw new TimeoutException($"rendezvous store key '{key}' was not set within {t}: a rank did not arrive.");
        return reply[1..];
    }

    public string GetString(string key, TimeSpan? timeout = null) => Encoding.UTF8.GetString(Get(key, timeout));

    public long Add(string key, long delta)
    {
        Span<byte> d = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(d, delta);
        return BinaryPrimitives.ReadInt64LittleEndian(Call(StoreProtocol.Request(StoreProtocol.Add, key, d)).AsSpan(1));
    }

    /// <summary>Records this rank's heartbeat with its status text; returns the age (ms) of every rank's last beat.</summary>
    public Dictionary<int, long> Beat(int rank, string status)
    {
        var bytes = Encoding.UTF8.GetBytes(status);
        if (bytes.Length > StoreProtocol.MaxStatus) bytes = bytes[..StoreProtocol.MaxStatus];
        return HeartbeatBoard.ParseAges(Call(StoreProtocol.Request(StoreProtocol.Beat, rank.ToString(System.Globalization.CultureInfo.InvariantCulture), bytes)));
    }

    /// <summary>Every rank's last heartbeat: its age (ms) and the status text it carried.</summary>
    public Dictionary<int, (long AgeMs, string Status)> Statuses() =>
        HeartbeatBoard.ParseStatuses(Call(StoreProtocol.Request(StoreProtocol.Status, "", [])));

    private byte[] Call(byte[] request)
    {
        lock (_lock)
        {
            StoreProtocol.WriteFrame(_socket, request);
            var reply = StoreProtocol.ReadFrame(_socket, StoreProtocol.MaxFrame);
            if (reply.Length == 0) throw new InvalidDataException("empty reply from the rendezvous store.");
            if (reply[0] == StoreProtocol.Fail && reply.Length > 1) // a refusal with its reason (a bare Fail is a GET that timed out)
                throw new UnauthorizedAccessException($"the rendezvous store {Encoding.UTF8.GetString(reply.AsSpan(1))}.");
            return reply;
        }
    }

    /// <summary>Resolves MASTER_ADDR to one address (IPv4 preferred).</summary>
    public static IPAddress Resolve(string host)
    {
        if (IPAddress.TryParse(host, out var ip)) return ip;
        IPAddress[] all;
        try { all = Dns.GetHostAddresses(host); }
        catch (SocketException e) { throw new ArgumentException($"MASTER_ADDR '{host}' does not resolve to an address ({e.Message}); give rank 0's IP address or a host name every host can resolve."); }
        return all.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? all.FirstOrDefault()
            ?? throw new ArgumentException($"MASTER_ADDR '{host}' does not resolve to an address.");
    }

    public void Dispose() => _socket.Dispose();
}
