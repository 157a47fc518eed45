using System.Diagnostics;
using DeepSpeedSharp.Comm.Shm;

using DeepSpeedSharp.Tests.Infrastructure;

namespace DeepSpeedSharp.Tests.Reliability;

/// <summary>
/// Issue 18 item 2: shared-memory segments are private to the job's user from the first instant (0600, exclusive
/// create) and a segment is mapped only when it is ours (owner uid, mode, the job's identity).
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
[Trait("Tier", "Full")]
public class ShmPrivacyTests : IDisposable
{
    private readonly string _path = $"{ShmJobFiles.Directory}/dss-test{Guid.NewGuid():N}"[..40];

    public void Dispose() => File.Delete(_path);

    [Fact]
    public void ASegmentIsCreated0600AndOwnedByUs()
    {
        using var seg = ShmSegment.Create(_path, 4096);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
        using var fs = new FileStream(_path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        Assert.Equal(FileOwnership.EffectiveUid, FileOwnership.OwnerOf(fs.SafeFileHandle));
    }

    [Fact]
    public void AnExistingFileIsNeverReused()
    {
        File.WriteAllBytes(_path, new byte[4096 + ShmSegment.HeaderBytes]);
        Assert.Throws<IOException>(() => ShmSegment.Create(_path, 4096));
        Assert.True(File.Exists(_path)); // someone else's file is left alone
    }

    [Fact]
    public void TheCreatorsIdentityOpensItAndAnotherIdentityIsRefused()
    {
        using var seg = ShmSegment.Create(_path, 4096);
        unsafe { seg.Pointer[100] = 42; }
        using (var other = ShmSegment.Open(_path, 4096, seg.Identity))
            unsafe { Assert.Equal(42, other.Pointer[100]); }
        var wrong = seg.Identity.ToArray();
        wrong[0] ^= 1;
        var e = Assert.Throws<UnauthorizedAccessException>(() => ShmSegment.Open(_path, 4096, wrong));
        Assert.Contains("does not carry this job's identity", e.Message);
    }

    [Fact]
    public void ASegmentOthersCanReadIsRefused()
    {
        using var seg = ShmSegment.Create(_path, 4096);
        File.SetUnixFileMode(_path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var e = Assert.Throws<UnauthorizedAccessException>(() => ShmSegment.Open(_path, 4096, seg.Identity));
        Assert.Contains("mode 644", e.Message);
    }

    [Fact]
    public void ASegmentOfAnotherUserIsRefused()
    {
        if (FileOwnership.EffectiveUid != 0) return; // needs root to give a file away (CI runs as root)
        using var seg = ShmSegment.Create(_path, 4096);
        Assert.Equal(0, Run("chown", "65534", _path));
        var e = Assert.Throws<UnauthorizedAccessException>(() => ShmSegment.Open(_path, 4096, seg.Identity));
        Assert.Contains("belongs to uid 65534", e.Message);
    }

    [Fact]
    public void AnotherUserCannotReadASegmentWhileItExists()
    {
        if (FileOwnership.EffectiveUid != 0 || !File.Exists("/usr/bin/setpriv")) return; // needs root to become another user
        using var seg = ShmSegment.Create(_path, 4096);
        Assert.NotEqual(0, Run("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "cat", _path));
    }

    private static int Run(string program, params string[] args)
    {
        return ChildProcess.Run(program, args).ExitCode;
    }
}
