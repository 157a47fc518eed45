using System.Net;
using System.Net.Sockets;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>
/// Binding a listening port that no other socket can share. .NET's <c>ReuseAddress</c> sets SO_REUSEPORT too on
/// Linux, which lets a second process (of the same user) bind the same port and receive some of its connections;
/// this sets SO_REUSEADDR alone (a restart may bind over connections in TIME_WAIT, never next to a listener).
/// </summary>
internal static class ExclusivePort
{
    private const int SolSocket = 1, SoReuseAddr = 2;

    /// <summary>A TCP socket bound exclusively to <paramref name="endPoint"/>; throws <see cref="SocketException"/> when the port is taken.</summary>
    public static Socket Bind(IPEndPoint endPoint)
    {
        var s = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux()) s.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            else s.ExclusiveAddressUse = OperatingSystem.IsWindows();
            s.Bind(endPoint);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when <paramref name="port"/> on <paramref name="address"/> can be bound now; also true when the address is
    /// not this host's (nothing to check here).
    /// </summary>
    public static bool IsFree(IPAddress address, int port)
    {
        try
        {
            using var s = Bind(new IPEndPoint(address, port));
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable) { return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>A port the kernel picks as free on <paramref name="address"/> a moment ago.</summary>
    public static int PickFree(IPAddress address)
    {
        using var s = Bind(new IPEndPoint(address, 0));
        return ((IPEndPoint)s.LocalEndPoint!).Port;
    }
}
