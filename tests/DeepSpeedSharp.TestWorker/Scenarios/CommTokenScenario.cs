using System.Net;
using System.Net.Sockets;
using DeepSpeedSharp.Comm;

namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>
/// `comm-token`: rank 0 initialises a world of 2; rank 1 first connects to the store with a wrong proof of the token and
/// with an oversized frame (both must be refused/closed), then initialises properly. Prints "REFUSED" lines.
/// </summary>
public sealed class CommTokenScenario : IScenario
{
    public string Name => "comm-token";

    public int Run(string[] args)
    {
        if (Environment.GetEnvironmentVariable("RANK") == "1")
        {
            int port = int.Parse(Environment.GetEnvironmentVariable("MASTER_PORT")!);
            using (var s = Connect(port))
            {
                s.Send([41, 0, 0, 0, .. "DSSSTORE2"u8, .. new byte[32]]); // hello with a client nonce
                var buf = new byte[256];
                int n = ReadFrame(s, buf); // OK, the server's nonce and its proof
                if (n != 4 + 65 || buf[4] != 1) Console.WriteLine($"hello: unexpected reply of {n} bytes");
                s.Send([32, 0, 0, 0, .. new byte[32]]); // a proof made without the token
                n = ReadFrame(s, buf); // the reply may arrive in several segments
                if (n > 5 && buf[4] == 0) Console.WriteLine("REFUSED wrong token: " + System.Text.Encoding.UTF8.GetString(buf, 5, n - 5));
                else Console.WriteLine($"wrong token: unexpected reply of {n} bytes");
            }
            using (var s = Connect(port))
            {
                s.Send([0, 0, 0, 0x40]); // claims a 1 GiB hello frame
                var buf = new byte[16];
                int n = s.Receive(buf);
                if (n == 0) Console.WriteLine("REFUSED oversized frame (connection closed)");
            }
        }
        var world = Dist.Initialize("tcp", TimeSpan.FromSeconds(60));
        world.Barrier();
        Dist.Destroy();
        return 0;
    }

    /// <summary>Reads one length-prefixed frame (4-byte little-endian length, then the body) or until the peer closes.</summary>
    private static int ReadFrame(Socket s, byte[] buf)
    {
        int n = 0;
        while (n < buf.Length)
        {
            int got = s.Receive(buf, n, buf.Length - n, SocketFlags.None);
            if (got == 0) break;
            n += got;
            if (n >= 4 && n >= 4 + BitConverter.ToInt32(buf, 0)) break;
        }
        return n;
    }

    private static Socket Connect(int port)
    {
        for (int i = 0; ; i++)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try { s.Connect(IPAddress.Loopback, port); return s; }
            catch (SocketException) when (i < 200) { s.Dispose(); Thread.Sleep(50); }
        }
    }
}
