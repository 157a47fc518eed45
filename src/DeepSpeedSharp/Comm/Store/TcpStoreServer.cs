using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>
/// The rendezvous key-value store rank 0 hosts on MASTER_ADDR:MASTER_PORT. It binds to that address only and
/// exclusively, accepts only clients that prove they hold the job token (<see cref="StoreHandshake"/>), bounds every
/// frame, bounds the connections still in the handshake (<see cref="MaxPendingHandshakes"/>, each closed after
/// <see cref="HandshakeTimeout"/>) so idle connections cannot pile up threads, and serves SET, blocking GET, ADD, and the heartbeats (BEAT, STATUS: <see cref="HeartbeatBoard"/>).
/// </summary>
internal sealed class TcpStoreServer : IDisposable
{
    private const int MaxConnections = 4096;
    /// <summary>Connections still in the handshake at once; more are closed at accept (a client retries).</summary>
    public const int MaxPendingHandshakes = 64;
    /// <summary>A connection that has not completed the handshake by then is closed.</summary>
    public static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(5);
    private int _pending;
    private readonly Socket _listener;
    private readonly byte[] _token;
    private readonly Dictionary<string, byte[]> _data = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _writers = new(StringComparer.Ordinal); // key → the rank that set it (under _data's lock)
    private readonly HeartbeatBoard _heartbeats = new();
    private readonly List<Socket> _clients = new();
    private readonly Thread _acceptThread;
    private volatile bool _stopped;

    public TcpStoreServer(IPAddress address, int port, byte[] token)
    {
        _token = token;
        try { _listener = ExclusivePort.Bind(new IPEndPoint(address, port)); }
        catch (SocketException e)
        {
            throw new InvalidOperationException($"rank 0 cannot host the rendezvous store on {address}:{port} (MASTER_ADDR:MASTER_PORT): {e.Message}. Pick a free MASTER_PORT.", e);
        }
        _listener.Listen(512);
        Port = ((IPEndPoint)_listener.LocalEndPoint!).Port;
        _acceptThread = new Thread(AcceptLoop) { IsBackground = true, Name = "dss-store-accept" };
        _acceptThread.Start();
    }

    public int Port { get; }

    /// <summary>Connections that did not complete the handshake: a wrong or missing token, or closed before proving it (for tests and diagnostics).</summary>
    public int RefusedCount;

    /// <summary>Connections closed at accept because <see cref="MaxPendingHandshakes"/> were already in the handshake.</summary>
    public int ClosedAtAccept;

    private void AcceptLoop()
    {
        while (!_stopped)
        {
            Socket c;
            try { c = _listener.Accept(); }
            catch (Exception) when (_stopped) { return; }
            catch (SocketException) { continue; }
            lock (_clients)
            {
                if (_clients.Count >= MaxConnections || _pending >= MaxPendingHandshakes)
                {
                    Interlocked.Increment(ref ClosedAtAccept);
                    c.Dispose();
                    continue;
                }
                _clients.Add(c);
                _pending++;
            }
            new Thread(() => Serve(c)) { IsBackground = true, Name = "dss-store-conn" }.Start();
        }
    }

    private void Serve(Socket c)
    {
        bool authenticated = false, pending = true;
        int rank;
        int handshake = 0; // 0 in progress, 1 authenticated, 2 timed out: the timer and a late success cannot both win
        try
        {
            c.NoDelay = true;
            // A silent or slow connection cannot hold a thread (nor one of the few handshake slots) for long.
            using (new Timer(_ => { if (Interlocked.CompareExchange(ref handshake, 2, 0) == 0) c.Dispose(); }, null, HandshakeTimeout, Timeout.InfiniteTimeSpan))
            {
                c.ReceiveTimeout = (int)HandshakeTimeout.TotalMilliseconds;
                // The success is claimed before the client hears OK, so a timer firing at that moment cannot close a
                // connection the client already counts as authenticated.
                bool ok = StoreHandshake.Server(c, _token, out rank, () => Interlocked.CompareExchange(ref handshake, 1, 0) == 0);
                lock (_clients) { _pending--; pending = false; }
                if (!ok) return;
                authenticated = true;
            }
            c.ReceiveTimeout = 0;
            while (!_stopped)
            {
                var (cmd, key, rest) = StoreProtocol.Parse(StoreProtocol.ReadFrame(c, StoreProtocol.MaxFrame));
                switch (cmd)
                {
                    case StoreProtocol.Set:
                        int owner;
                        lock (_data)
                        {
                            if (!_writers.TryGetValue(key, out owner)) _writers[key] = owner = rank;
                            if (owner == rank) { _data[key] = rest.ToArray(); Monitor.PulseAll(_data); }
                        }
                        StoreProtocol.WriteFrame(c, owner == rank ? [StoreProtocol.Ok]
                            : Refusal($"refused rank {rank}'s write of key '{key}': rank {owner} set it (a connection writes only its own rank's keys)"));
                        break;
                    case StoreProtocol.Get:
                        if (rest.Length != 8) throw new InvalidDataException("GET needs an 8-byte timeout.");
                        long ms = BinaryPrimitives.ReadInt64LittleEndian(rest.Span);
                        var deadline = DateTime.UtcNow + TimeSpan.FromMilliseconds(Math.Clamp(ms, 0, int.MaxValue));
                        byte[]? value;
                        lock (_data)
                        {
                            while (!_data.TryGetValue(key, out value) && !_stopped)
                            {
                                var left = deadline - DateTime.UtcNow;
                                if (left <= TimeSpan.Zero) break;
                                Monitor.Wait(_data, left < TimeSpan.FromSeconds(1) ? left : TimeSpan.FromSeconds(1));
                            }
                        }
                        StoreProtocol.WriteFrame(c, value is null ? [StoreProtocol.Fail] : [StoreProtocol.Ok, .. value]);
                        break;
                    case StoreProtocol.Add:
                        if (rest.Length != 8) throw new InvalidDataException("ADD needs an 8-byte delta.");
                        long result;
                        lock (_data)
                        {
                            long cur = _data.TryGetValue(key, out var v) && v.Length == 8 ? BinaryPrimitives.ReadInt64LittleEndian(v) : 0;
                            result = cur + BinaryPrimitives.ReadInt64LittleEndian(rest.Span);
                            var nv = new byte[8];
                            BinaryPrimitives.WriteInt64LittleEndian(nv, result);
                            _data[key] = nv;
                            Monitor.PulseAll(_data);
                        }
                        var reply = new byte[9];
                        reply[0] = StoreProtocol.Ok;
                        BinaryPrimitives.WriteInt64LittleEndian(reply.AsSpan(1), result);
                        StoreProtocol.WriteFrame(c, reply);
                        break;
                    case StoreProtocol.Beat:
                        if (!int.TryParse(key, out var beatRank)) throw new InvalidDataException($"heartbeat key '{key}' is not a rank.");
                        StoreProtocol.WriteFrame(c, beatRank == rank ? _heartbeats.Beat(beatRank, rest.Span)
                            : Refusal($"refused a heartbeat for rank {beatRank} from a connection of rank {rank} (a rank beats only for itself)"));
                        break;
                    case StoreProtocol.Status:
                        StoreProtocol.WriteFrame(c, _heartbeats.Statuses());
                        break;
                    default:
                        throw new InvalidDataException($"unknown store command {cmd}.");
                }
            }
        }
        catch (Exception e) when (e is SocketException or EndOfStreamException or InvalidDataException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            if (!authenticated) Interlocked.Increment(ref RefusedCount);
            lock (_clients)
            {
                _clients.Remove(c);
                if (pending) _pending--;
            }
            c.Dispose();
        }
    }

    private static byte[] Refusal(string why) => [StoreProtocol.Fail, .. System.Text.Encoding.UTF8.GetBytes(why)];

    public void Dispose()
    {
        _stopped = true;
        _listener.Dispose();
        lock (_clients) foreach (var c in _clients) c.Dispose();
        lock (_data) Monitor.PulseAll(_data);
    }
}
