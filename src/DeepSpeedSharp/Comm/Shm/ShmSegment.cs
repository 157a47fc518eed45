using System.IO.MemoryMappedFiles;
using System.Security.Cryptography;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>
/// A shared-memory file under /dev/shm mapped into this process. It is created private to this user from the first
/// instant (mode 0600, exclusive create: an existing file of that name is an error, never reused), and starts with a
/// one-page header holding the creator's random 16-byte identity; <see cref="Open"/> maps a segment only when it is
/// owned by this user, not readable or writable by anyone else, and carries the identity the job's store announced.
/// The creator removes the file as soon as every member mapped it, so nothing is left behind even if a process is
/// killed; until then the file is also removed on dispose and at process exit (the launcher removes what a killed
/// rank left, see <see cref="ShmJobFiles.RemoveLeftovers"/>).
/// </summary>
internal sealed unsafe class ShmSegment : IDisposable
{
    /// <summary>Bytes before <see cref="Pointer"/>: the identity (16 bytes) padded to a page, so the data stays page-aligned as the layout expects.</summary>
    public const int HeaderBytes = 4096;
    public const int IdentityBytes = 16;
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private string? _pathToRemove;
    private bool _disposed;

    private ShmSegment(string path, long size, byte[]? expectedIdentity)
    {
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("the shm backend needs a POSIX system (/dev/shm); use tcp.");
        Path = path;
        Size = size;
        bool create = expectedIdentity == null;
        long total = size + HeaderBytes;
        FileStream fs;
        if (create)
        {
            // O_CREAT|O_EXCL with mode 0600: no other user can open it, not even in the instant before a chmod.
            fs = new FileStream(path, new FileStreamOptions
            {
                Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite,
                UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            _pathToRemove = path;
            AppDomain.CurrentDomain.ProcessExit += OnExit;
            fs.SetLength(total);
        }
        else
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
            try { FileOwnership.CheckPrivate(fs.SafeFileHandle, path, "shared-memory segment"); }
            catch { fs.Dispose(); throw; }
            if (fs.Length != total)
            {
                fs.Dispose();
                throw new InvalidOperationException($"shared-memory segment {path} has {fs.Length} bytes, expected {total}: the ranks disagree on the group layout.");
            }
        }
        _file = MemoryMappedFile.CreateFromFile(fs, null, total, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        _view = _file.CreateViewAccessor(0, total, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        byte* header = p + _view.PointerOffset;
        Pointer = header + HeaderBytes;
        if (create)
        {
            Identity = RandomNumberGenerator.GetBytes(IdentityBytes);
            Identity.CopyTo(new Span<byte>(header, IdentityBytes));
        }
        else
        {
            Identity = new Span<byte>(header, IdentityBytes).ToArray();
            if (!CryptographicOperations.FixedTimeEquals(Identity, expectedIdentity))
            {
                DisposeMapping();
                throw new UnauthorizedAccessException($"shared-memory segment {path} does not carry this job's identity: it was not created by this job's rank (refusing to map it).");
            }
        }
        // Touch every page now: first touches on this VM cost ~4 ms/MB and must not land inside a collective.
        for (long off = 0; off < size; off += 4096)
        {
            if (create) Pointer[off] = 0;
            else _ = Volatile.Read(ref Pointer[off]);
        }
    }

    public string Path { get; }
    /// <summary>Usable bytes at <see cref="Pointer"/> (the header excluded).</summary>
    public long Size { get; }
    public byte* Pointer { get; }
    /// <summary>The creator's random identity, written in the header; members check it on open.</summary>
    public byte[] Identity { get; }

    /// <summary>Creates <paramref name="path"/> (mode 0600, exclusive) with <paramref name="size"/> usable bytes and a fresh identity.</summary>
    public static ShmSegment Create(string path, long size) => new(path, size, null);

    /// <summary>Maps an existing segment after checking its owner, mode, size and identity.</summary>
    public static ShmSegment Open(string path, long size, byte[] identity)
    {
        if (identity.Length != IdentityBytes) throw new ArgumentException($"a shared-memory identity has {IdentityBytes} bytes, not {identity.Length}.", nameof(identity));
        return new(path, size, identity);
    }

    /// <summary>Removes the file (the mapping stays valid for every process that has it).</summary>
    public void Unlink()
    {
        var p = Interlocked.Exchange(ref _pathToRemove, null);
        if (p == null) return;
        try { File.Delete(p); } catch (IOException) { }
        AppDomain.CurrentDomain.ProcessExit -= OnExit;
    }

    private void OnExit(object? sender, EventArgs e) => Unlink();

    private void DisposeMapping()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Unlink();
        DisposeMapping();
    }
}
