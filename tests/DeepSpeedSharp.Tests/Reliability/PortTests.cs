using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using DeepSpeedSharp.Comm.Store;
using DeepSpeedSharp.Tests.Infrastructure;
using DeepSpeedSharp.Tests.Launcher;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 3: the store's port is bound exclusively, the launcher fails before starting ranks when the port is
/// taken (or, on a local run without --master_port, takes a free one), and a listener without the job token
/// learns nothing from a rank (challenge-response).
/// </summary>
[Collection(MultiProcessCollection.Name)]
[Trait("Tier", "Full")]
public class PortTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-port");
    private static readonly byte[] Token = Convert.FromHexString("00112233445566778899aabbccddeeff");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>A squatter as .NET binds by default with ReuseAddress (SO_REUSEADDR and SO_REUSEPORT on Linux).</summary>
    private static Socket Squat(int port)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        s.Bind(new IPEndPoint(IPAddress.Loopback, port));
        s.Listen(16);
        return s;
    }

    [Fact]
    public void NoOtherSocketCanShareTheStoresPort()
    {
        int port = RankProcesses.FreePort();
        using (var server = new TcpStoreServer(IPAddress.Loopback, port, Token))
            Assert.Throws<SocketException>(() => Squat(port).Dispose());
        using var squatter = Squat(RankProcesses.FreePort());
        int taken = ((IPEndPoint)squatter.LocalEndPoint!).Port;
        var e = Assert.Throws<InvalidOperationException>(() => new TcpStoreServer(IPAddress.Loopback, taken, Token));
        Assert.Contains($"127.0.0.1:{taken}", e.Message);
    }

    [Fact]
    public void AListenerWithoutTheTokenReceivesNoSecretAndIsNamed()
    {
        using var squatter = Squat(0);
        int port = ((IPEndPoint)squatter.LocalEndPoint!).Port;
        var received = new List<byte>();
        var fake = new Thread(() =>
        {
            using var c = squatter.Accept();
            var buf = new byte[4096];
            int n = c.Receive(buf);
            received.AddRange(buf.AsSpan(0, n).ToArray());
            // Pretend to be a store: OK, a nonce and a made-up proof.
            StoreProtocol.WriteFrame(c, [StoreProtocol.Ok, .. new byte[64]]);
            c.ReceiveTimeout = 2000;
            try { while ((n = c.Receive(buf)) > 0) received.AddRange(buf.AsSpan(0, n).ToArray()); }
            catch (SocketException) { }
        });
        fake.Start();
        var e = Assert.Throws<UnauthorizedAccessException>(() => new TcpStoreClient(IPAddress.Loopback, port, Token, TimeSpan.FromSeconds(5), 0));
        fake.Join(TimeSpan.FromSeconds(10));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("could not prove it holds the job token", e.Message);
        Assert.Equal(4 + StoreHandshake.Magic.Length + StoreHandshake.NonceBytes, received.Count); // the hello and nothing else
        Assert.DoesNotContain(Convert.ToHexString(Token), Convert.ToHexString(received.ToArray()));
    }

    [Fact]
    public void TheStoreRefusesAClientWithAnotherToken()
    {
        int port = RankProcesses.FreePort();
        using var server = new TcpStoreServer(IPAddress.Loopback, port, Token);
        var e = Assert.Throws<UnauthorizedAccessException>(() => new TcpStoreClient(IPAddress.Loopback, port, [1, 2, 3], TimeSpan.FromSeconds(5), 0));
        Assert.Contains("could not prove it holds the job token", e.Message); // the client refuses first: the store is not its job's
        using var ok = new TcpStoreClient(IPAddress.Loopback, port, Token, TimeSpan.FromSeconds(5), 0);
        ok.Set("k", "v");
        Assert.Equal("v", ok.GetString("k"));
    }

    [Fact]
    public void ASecondJobOnTheSamePortFailsBeforeStartingRanksNamingThePort()
    {
        var pids = Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids")).FullName;
        string port = RankProcesses.FreePort().ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var first = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--master_port", port, DssProcess.Worker, "fault-hold", $"--pid_dir={pids}");
        first.WaitForPids(pids, 2, TimeSpan.FromSeconds(60));
        var pids2 = Directory.CreateDirectory(Path.Combine(_dir.FullName, "pids2")).FullName;
        var sw = Stopwatch.StartNew();
        using var second = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--master_port", port, DssProcess.Worker, "fault-hold", $"--pid_dir={pids2}");
        Assert.NotEqual(0, second.WaitForExit(TimeSpan.FromSeconds(30)));
        Assert.Contains($"--master_port {port}: 127.0.0.1:{port} is already in use", second.Error);
        Assert.DoesNotContain("[rank", second.Output + second.Error); // no rank was started
        Assert.Empty(Directory.GetFiles(pids2));
        output.WriteLine($"second job on a taken port: launcher exited after {sw.Elapsed.TotalSeconds:F2} s, no rank started");
    }

    [Fact]
    public void ALocalRunWithoutMasterPortTakesAFreePortWhenTheDefaultIsBusy()
    {
        Socket? held = null;
        try { held = Squat(MasterPortDefault); } catch (SocketException) { } // busy already: just as good
        try
        {
            using var dss = new DssProcess(_dir.FullName, "launch", "--num_gpus", "2", "--no_local_rank", DssProcess.Worker, "launch-allreduce");
            Assert.True(dss.WaitForExit(TimeSpan.FromSeconds(60)) == 0, dss.Output + dss.Error);
            Assert.Contains($"port {MasterPortDefault} on 127.0.0.1 is in use; using free port", dss.Error);
            Assert.Contains("allreduce ok rank 1 of 2", dss.Output);
        }
        finally { held?.Dispose(); }
    }

    private const int MasterPortDefault = DeepSpeedSharp.Launcher.MasterPort.Default;
}
