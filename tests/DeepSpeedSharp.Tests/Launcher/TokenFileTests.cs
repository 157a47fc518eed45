using DeepSpeedSharp.Launcher;

namespace DeepSpeedSharp.Tests.Launcher;

/// <summary>Issue 33 item 1: the node launcher takes the job token only from a file no one else could read, and deletes it.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
public sealed class TokenFileTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("dss-tokenfile");

    public void Dispose() => _dir.Delete(recursive: true);

    private string Write(UnixFileMode mode, string text = "abcdef0123456789")
    {
        var path = Path.Combine(_dir.FullName, $"job-{Guid.NewGuid():N}.token");
        File.WriteAllText(path, text + "\n");
        File.SetUnixFileMode(path, mode);
        return path;
    }

    [Fact]
    public void APrivateFileIsReadAndDeleted()
    {
        var path = Write(UnixFileMode.UserRead | UnixFileMode.UserWrite);
        Assert.Equal("abcdef0123456789", TokenDelivery.Read(path));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void AFileOthersCanReadIsRefusedAndDeleted()
    {
        var path = Write(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var e = Assert.Throws<ArgumentException>(() => TokenDelivery.Read(path));
        Assert.Equal($"--token_file '{path}' is accessible to other users (mode 644); refusing a job token others may have read.", e.Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void AMissingOrEmptyFileIsNamed()
    {
        var missing = Path.Combine(_dir.FullName, "none.token");
        Assert.StartsWith($"--token_file '{missing}': no such file", Assert.Throws<ArgumentException>(() => TokenDelivery.Read(missing)).Message);
        var empty = Write(UnixFileMode.UserRead | UnixFileMode.UserWrite, "");
        Assert.Equal($"--token_file '{empty}' is empty.", Assert.Throws<ArgumentException>(() => TokenDelivery.Read(empty)).Message);
    }
}
