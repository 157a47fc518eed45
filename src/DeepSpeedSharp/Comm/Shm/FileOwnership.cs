using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>Who owns an open file (fstat through libc) and whether it is private to this user.</summary>
internal static unsafe partial class FileOwnership
{
    [LibraryImport("libc", EntryPoint = "fstat", SetLastError = true)]
    private static partial int SysFstat(int fd, byte* buf);

    [LibraryImport("libc", EntryPoint = "geteuid")]
    private static partial uint SysGetEuid();

    /// <summary>This process's effective user id.</summary>
    public static uint EffectiveUid => SysGetEuid();

    /// <summary>The owner uid of an open file, or null where the struct stat layout is not known (not Linux x64/arm64).</summary>
    public static uint? OwnerOf(SafeFileHandle handle)
    {
        // struct stat: x86_64 has st_uid at byte 28 (after dev, ino, 8-byte nlink, mode); the generic layout
        // of arm64 has it at byte 24 (4-byte mode and nlink).
        int offset = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 when OperatingSystem.IsLinux() => 28,
            Architecture.Arm64 when OperatingSystem.IsLinux() => 24,
            _ => -1,
        };
        if (offset < 0) return null;
        byte* buf = stackalloc byte[256];
        bool added = false;
        handle.DangerousAddRef(ref added);
        try
        {
            if (SysFstat((int)handle.DangerousGetHandle(), buf) != 0)
                throw new IOException($"fstat failed (errno {Marshal.GetLastPInvokeError()}).");
        }
        finally { if (added) handle.DangerousRelease(); }
        return *(uint*)(buf + offset);
    }

    /// <summary>
    /// Throws unless the open file belongs to this process's user and no one else may read or write it (mode
    /// without group/other bits).
    /// </summary>
    public static void CheckPrivate(SafeFileHandle handle, string path, string what)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("file ownership checks need a POSIX system.");
        var owner = OwnerOf(handle);
        if (owner is { } uid && uid != EffectiveUid)
            throw new UnauthorizedAccessException($"{what} {path} belongs to uid {uid}, not to this job's user (uid {EffectiveUid}): refusing to map it.");
        var mode = File.GetUnixFileMode(handle);
        const UnixFileMode others = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute
                                    | UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
        if ((mode & others) != 0)
            throw new UnauthorizedAccessException($"{what} {path} has mode {Convert.ToString((int)mode, 8)}, accessible to other users; this job's segments are 0600: refusing to map it.");
    }
}
