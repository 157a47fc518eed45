using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DeepSpeedSharp.Comm.Store;
using DeepSpeedSharp.Tests.Infrastructure;
using Xunit.Abstractions;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 10: idle unauthenticated connections cannot make the store start a thread each: at most
/// <see cref="TcpStoreServer.MaxPendingHandshakes"/> are in the handshake at once (the rest are closed at accept), each
/// for at most <see cref="TcpStoreServer.HandshakeTimeout"/>, and a rank still gets in.
/// </summary>
[Collection(MultiProcessCollection.Name)]
public class StoreFloodTests(ITestOutputHelper output)
{
    private static readonly byte[] Token = Convert.FromHexString("0123456789abcdef0123456789abcdef");

    private static int Threads() =>
        int.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith("Threads:", StringComparison.Ordinal))[8..].Trim());

    [Fact]
    public void ThreeThousandIdleConnectionsAreBoundedAndARankStillJoins()
    {
        int port = RankProcesses.FreePort();
        using var server = new TcpStoreServer(IPAddress.Loopback, port, Token);
        int before = Threads();
        var idle = new List<Socket>();
        try
        {
            for (int i = 0; i < 3000; i++)
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Connect(IPAddress.Loopback, port);
                idle.Add(s);
            }
            Thread.Sleep(500);
            int during = Threads();
            output.WriteLine($"threads: {before} before, {during} with 3000 idle connections; closed at accept: {server.ClosedAtAccept}");
            Assert.True(during - before <= TcpStoreServer.MaxPendingHandshakes + 16, $"{during - before} more threads with 3000 idle connections");
            Assert.True(server.ClosedAtAccept >= 3000 - TcpStoreServer.MaxPendingHandshakes - 600, $"only {server.ClosedAtAccept} closed at accept"); // some may wait in the backlog
            var sw = Stopwatch.StartNew();
            using var rank = new TcpStoreClient(IPAddress.Loopback, port, Token, TimeSpan.FromSeconds(60), 0);
            rank.Set("k", "v");
            Assert.Equal("v", rank.GetString("k"));
            output.WriteLine($"a rank joined {sw.Elapsed.TotalSeconds:F2} s into the flood");
            Assert.True(sw.Elapsed < TcpStoreServer.HandshakeTimeout * 3, $"joining took {sw.Elapsed}");
        }
        finally
        {
            foreach (var s in idle) s.Dispose();
        }
    }
}
