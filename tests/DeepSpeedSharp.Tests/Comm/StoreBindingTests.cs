using System.Net;
using DeepSpeedSharp.Comm.Store;
using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Comm;

/// <summary>
/// Issue 33 item 1: a store connection is bound to the rank it authenticated as — it cannot beat for another rank (a
/// stopped rank then goes unreported) nor overwrite a key another rank set (an address, a segment name).
/// </summary>
public class StoreBindingTests
{
    private static readonly byte[] Token = [5, 6, 7, 8];

    [Fact]
    public void AConnectionBeatsAndWritesOnlyForItsOwnRank()
    {
        int port = RankProcesses.FreePort();
        using var server = new TcpStoreServer(IPAddress.Loopback, port, Token);
        using var rank0 = new TcpStoreClient(IPAddress.Loopback, port, Token, TimeSpan.FromSeconds(5), 0);
        using var rank1 = new TcpStoreClient(IPAddress.Loopback, port, Token, TimeSpan.FromSeconds(5), 1);

        Assert.Contains(1, rank1.Beat(1, "computing").Keys);
        var beat = Assert.Throws<UnauthorizedAccessException>(() => rank1.Beat(0, "computing"));
        Assert.Equal("the rendezvous store refused a heartbeat for rank 0 from a connection of rank 1 (a rank beats only for itself).", beat.Message);
        Assert.DoesNotContain(0, rank1.Statuses().Keys); // rank 0 never beat: the forged beat was not recorded

        rank0.Set("g1/addr/0", "127.0.0.1|5000");
        rank0.Set("g1/addr/0", "127.0.0.1|5001"); // its own key: fine
        var write = Assert.Throws<UnauthorizedAccessException>(() => rank1.Set("g1/addr/0", "10.0.0.66|6666"));
        Assert.Equal("the rendezvous store refused rank 1's write of key 'g1/addr/0': rank 0 set it (a connection writes only its own rank's keys).", write.Message);
        Assert.Equal("127.0.0.1|5001", rank1.GetString("g1/addr/0"));
        Assert.Equal(3, rank1.Add("counter", 3)); // counters stay shared
        Assert.Equal(5, rank0.Add("counter", 2));
    }
}
