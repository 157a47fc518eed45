using System.Net;
using System.Net.Sockets;
using DeepSpeedSharp.Comm.Store;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The rendezvous port, checked before any rank starts: the store binds it exclusively, so a port another job or
/// program holds would only make rank 0 fail later. A local run without <c>--master_port</c> takes a free port
/// when the default is busy (as <c>torchrun --standalone</c> does).
/// </summary>
public static class MasterPort
{
    /// <summary>DeepSpeed's default MASTER_PORT.</summary>
    public const int Default = 29500;

    /// <summary>
    /// The port for a local run: <paramref name="requested"/> when given or free, else a free port
    /// (reported through <paramref name="note"/>).
    /// </summary>
    public static int ForLocalRun(string masterAddr, int requested, bool given, Action<string> note)
    {
        if (given || Resolve(masterAddr) is not { } address || ExclusivePort.IsFree(address, requested)) return requested;
        int port = ExclusivePort.PickFree(address);
        note($"port {requested} on {masterAddr} is in use; using free port {port} (give --master_port to choose one).");
        return port;
    }

    /// <summary>Throws a one-line error naming the port when <paramref name="port"/> cannot be bound on <paramref name="masterAddr"/> here.</summary>
    public static void EnsureFree(string masterAddr, int port)
    {
        if (Resolve(masterAddr) is not { } address || ExclusivePort.IsFree(address, port)) return;
        throw new InvalidOperationException($"--master_port {port}: {masterAddr}:{port} is already in use (another job or program listens there); pick a free port with --master_port, or stop that program.");
    }

    private static IPAddress? Resolve(string host)
    {
        try { return TcpStoreClient.Resolve(host); }
        catch (Exception e) when (e is SocketException or ArgumentException) { return null; }
    }
}
