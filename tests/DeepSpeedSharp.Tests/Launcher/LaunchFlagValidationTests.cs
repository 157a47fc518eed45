using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>Issue 33 item 8: launcher flags are checked before any rank starts, with one line naming the flag and value.</summary>
public class LaunchFlagValidationTests
{
    private static string Refused(params string[] args) =>
        Assert.Throws<ArgumentException>(() => LaunchOptions.Parse([.. args, "train.dll"])).Message;

    [Theory]
    [InlineData("NaN")]
    [InlineData("-1")]
    [InlineData("1e9")]
    [InlineData("soon")]
    public void AGracePeriodThatIsNotASpanOfSecondsIsRefused(string value) =>
        Assert.Equal($"dss launch: --grace_period needs a number of seconds from 0 to 3600, got '{value}'.", Refused("--grace_period", value));

    [Fact]
    public void ACoreListWithoutBindingIsRefusedInsteadOfIgnored() =>
        Assert.Equal("dss launch: --bind_core_list '0-3' only takes effect with --bind_cores_to_rank; add it, or drop the list.",
            Refused("--bind_core_list", "0-3"));

    [Fact]
    public void AMalformedOrHugeCoreListIsRefusedAtParse()
    {
        Assert.Contains("'3-1' is not a core number or a range LOW-HIGH", Refused("--bind_cores_to_rank", "--bind_core_list", "3-1"));
        Assert.Contains("'0-99999999' is not a core number or a range LOW-HIGH (cores 0-65535)", Refused("--bind_cores_to_rank", "--bind_core_list", "0-99999999"));
        Assert.Equal([0, 1], LaunchOptions.Parse(["--bind_cores_to_rank", "--bind_core_list", "0-1", "train.dll"]).BindCoreList is { } l ? CoreBinding.ParseCoreList(l) : []);
    }

    /// <summary>On the node, a list naming cores the host lacks is refused before a rank starts (it set OMP_NUM_THREADS=500 and failed in taskset).</summary>
    [Fact]
    public void CoresTheHostDoesNotHaveAreRefusedOnTheNode()
    {
        var e = Assert.Throws<ArgumentException>(() => CoreBinding.HostCores("0-999", 2));
        Assert.Equal($"--bind_core_list '0-999' names core(s) 2-999, but this host ({Environment.MachineName}) has cores 0-1.", e.Message);
        Assert.Equal([0, 1], CoreBinding.HostCores("0-1", 2));
        Assert.Equal([0, 1], CoreBinding.HostCores(null, 2));
    }

    /// <summary>Issue 33 item 9: an impossible --master_addr is named at parse (it reached the ranks as "Name or service not known").</summary>
    [Theory]
    [InlineData("300.1.1.1", "is not an IPv4 address (four numbers 0-255 separated by dots)")]
    [InlineData("10.0.1", "is not an IPv4 address (four numbers 0-255 separated by dots)")]
    [InlineData("fe80::zz", "is not an IPv6 address")]
    [InlineData("node_1", "is neither an IP address nor a host name (letters, digits, '-' and '.')")]
    [InlineData("a b", "is neither an IP address nor a host name (letters, digits, '-' and '.')")]
    public void AnImpossibleMasterAddressIsNamed(string addr, string problem) =>
        Assert.Equal($"dss launch: --master_addr '{addr}' {problem}.", Refused("--master_addr", addr));

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("198.18.0.2")]
    [InlineData("::1")]
    [InlineData("node-1.cluster.local")]
    [InlineData("localhost")]
    public void APlausibleMasterAddressIsAccepted(string addr) =>
        Assert.Equal(addr, LaunchOptions.Parse(["--master_addr", addr, "train.dll"]).MasterAddr);
}
