using System.IO.MemoryMappedFiles;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>
/// A shared-memory file under /dev/shm mapped into this process. The creator removes the file as soon as every
/// member mapped it, so nothing is left behind even if a process is killed; until then the file is also removed
/// on dispose and at process exit.
/// </summary>
internal sealed unsafe class ShmSegment : IDisposable
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private string? _pathToRemove;
    private bool _disposed;

    private ShmSegment(string path, long size, bool create)
    {
        Path = path;
        Size = size;
        var fs = new FileStream(path, create ? FileMode.CreateNew : FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite);
        if (create)
        {
            _pathToRemove = path;
            AppDomain.CurrentDomain.ProcessExit += OnExit;
            fs.SetLength(size);
        }
        else if (fs.Length != size)
        {
            fs.Dispose();
            throw new InvalidOperationException($"shared-memory segment {path} has {fs.Length} bytes, expected {size}: the ranks disagree on the group layout.");
        }
        _file = MemoryMappedFile.CreateFromFile(fs, null, size, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
        _view = _file.CreateViewAccessor(0, size, MemoryMappedFileAccess.ReadWrite);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        Pointer = p + _view.PointerOffset;
        // Touch every page now: first touches on this VM cost ~4 ms/MB and must not land inside a collective.
        for (long off = 0; off < size; off += 4096)
        {
            if (create) Pointer[off] = 0;
            else _ = Volatile.Read(ref Pointer[off]);
        }
    }

    public string Path { get; }
    public long Size { get; }
    public byte* Pointer { get; }

    public static ShmSegment Create(string path, long size) => new(path, size, create: true);
    public static ShmSegment Open(string path, long size) => new(path, size, create: false);

    /// <summary>Removes the file (the mapping stays valid for every process that has it).</summary>
    public void Unlink()
    {
        var p = Interlocked.Exchange(ref _pathToRemove, null);
        if (p == null) return;
        try { File.Delete(p); } catch (IOException) { }
        AppDomain.CurrentDomain.ProcessExit -= OnExit;
    }

    private void OnExit(object? sender, EventArgs e) => Unlink();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Unlink();
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}
