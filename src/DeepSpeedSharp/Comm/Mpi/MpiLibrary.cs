using System.Runtime.InteropServices;
using TorchSharp;

namespace DeepSpeedSharp.Comm.Mpi;

/// <summary>
/// The MPI C library loaded at run time: OpenMPI 4.x (libmpi.so.40, handles are addresses of exported globals) or
/// MPICH 4.x (libmpich.so.12 / libmpi.so.12, handles are integer constants). Handles are carried as nint: MPICH's
/// 32-bit handles are passed in the low half of a register or stack slot, which is what the x86-64 and arm64 ABIs read.
/// </summary>
internal sealed unsafe class MpiLibrary
{
    public const int ThreadMultiple = 3, Undefined = -32766, Success = 0;
    private static readonly object LoadLock = new();
    private static MpiLibrary? _loaded;
    private static string? _loadError;

    private readonly nint _lib;

    public string Name { get; }
    public bool IsOpenMpi { get; }
    public nint CommWorld { get; }
    public nint Byte { get; }
    public nint Float { get; }
    public nint Double { get; }
    public nint Int { get; }
    public nint LongLong { get; }
    public nint OpSum { get; }
    public nint OpMax { get; }
    public nint OpMin { get; }
    public nint InPlace { get; }
    public nint StatusIgnore { get; }

    public readonly delegate* unmanaged<int*, int> Initialized, Finalized;
    public readonly delegate* unmanaged<int*, nint, int, int*, int> InitThread;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public readonly delegate* unmanaged<nint, int, int, nint*, int> CommSplit;
    public readonly delegate* unmanaged<nint, nint*, int> CommDup;
    public readonly delegate* unmanaged<nint*, int> CommFree;
    public readonly delegate* unmanaged<nint, int> Barrier;
    public readonly delegate* unmanaged<nint, int, int> Abort;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, int> Allreduce;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, int, nint, int> Reduce;
    public readonly delegate* unmanaged<void*, int, nint, int, nint, int> Bcast;
    public readonly delegate* unmanaged<void*, void*, int*, nint, nint, nint, int> ReduceScatter;
    public readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> Allgather;
    public readonly delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int> Allgatherv;
    public readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int> Alltoall;
    public readonly delegate* unmanaged<void*, int, nint, int, int, void*, int, nint, int, int, nint, nint, int> Sendrecv;
    public readonly delegate* unmanaged<void*, int, nint, int, int, nint, int> Send;
    public readonly delegate* unmanaged<void*, int, nint, int, int, nint, nint, int> Recv;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;

    private MpiLibrary(nint lib, string name, bool openMpi)
    {
        _lib = lib;
        Name = name;
        IsOpenMpi = openMpi;
        if (openMpi)
        {
            CommWorld = Export("ompi_mpi_comm_world");
            Byte = Export("ompi_mpi_byte"); Float = Export("ompi_mpi_float"); Double = Export("ompi_mpi_double");
            Int = Export("ompi_mpi_int"); LongLong = Export("ompi_mpi_long_long_int");
            OpSum = Export("ompi_mpi_op_sum"); OpMax = Export("ompi_mpi_op_max"); OpMin = Export("ompi_mpi_op_min");
            InPlace = 1; StatusIgnore = 0;
        }
        else
        {
            CommWorld = 0x44000000;
            Byte = 0x4c00010d; Float = 0x4c00040a; Double = 0x4c00080b; Int = 0x4c000405; LongLong = 0x4c000809;
            OpMax = 0x58000001; OpMin = 0x58000002; OpSum = 0x58000003;
            InPlace = -1; StatusIgnore = 1;
        }
        Initialized = (delegate* unmanaged<int*, int>)Export("MPI_Initialized");
        Finalized = (delegate* unmanaged<int*, int>)Export("MPI_Finalized");
        InitThread = (delegate* unmanaged<int*, nint, int, int*, int>)Export("MPI_Init_thread");
        Finalize = (delegate* unmanaged<int>)Export("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Export("MPI_Comm_size");
        CommSplit = (delegate* unmanaged<nint, int, int, nint*, int>)Export("MPI_Comm_split");
        CommDup = (delegate* unmanaged<nint, nint*, int>)Export("MPI_Comm_dup");
        CommFree = (delegate* unmanaged<nint*, int>)Export("MPI_Comm_free");
        Barrier = (delegate* unmanaged<nint, int>)Export("MPI_Barrier");
        Abort = (delegate* unmanaged<nint, int, int>)Export("MPI_Abort");
        Allreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, int>)Export("MPI_Allreduce");
        Reduce = (delegate* unmanaged<void*, void*, int, nint, nint, int, nint, int>)Export("MPI_Reduce");
        Bcast = (delegate* unmanaged<void*, int, nint, int, nint, int>)Export("MPI_Bcast");
        ReduceScatter = (delegate* unmanaged<void*, void*, int*, nint, nint, nint, int>)Export("MPI_Reduce_scatter");
        Allgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Allgather");
        Allgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, int>)Export("MPI_Allgatherv");
        Alltoall = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, int>)Export("MPI_Alltoall");
        Sendrecv = (delegate* unmanaged<void*, int, nint, int, int, void*, int, nint, int, int, nint, nint, int>)Export("MPI_Sendrecv");
        Send = (delegate* unmanaged<void*, int, nint, int, int, nint, int>)Export("MPI_Send");
        Recv = (delegate* unmanaged<void*, int, nint, int, int, nint, nint, int>)Export("MPI_Recv");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Export("MPI_Error_string");
    }

    private nint Export(string symbol) => NativeLibrary.TryGetExport(_lib, symbol, out var p) ? p
        : throw new InvalidOperationException($"the MPI library {Name} does not export {symbol}; use OpenMPI 4.x or MPICH 4.x.");

    /// <summary>Candidates in preference order: OpenMPI, then MPICH (<paramref name="forced"/>, DSS_MPI_LIBRARY, overrides).</summary>
    private static IEnumerable<(string Name, bool OpenMpi)> Candidates(string? forced)
    {
        if (!string.IsNullOrEmpty(forced))
        {
            yield return (forced, !forced.Contains("mpich", StringComparison.OrdinalIgnoreCase) && !forced.EndsWith(".12", StringComparison.Ordinal));
            yield break;
        }
        yield return ("libmpi.so.40", true);
        yield return ("libmpich.so.12", false);
        yield return ("libmpi.so.12", false);
    }

    /// <summary>The installed MPI library (or <paramref name="forced"/>, the launch environment's DSS_MPI_LIBRARY), or null
    /// with <see cref="LoadError"/> saying why. Loaded once per process.</summary>
    public static MpiLibrary? TryLoad(string? forced)
    {
        lock (LoadLock)
        {
            if (_loaded != null || _loadError != null) return _loaded;
            var tried = new List<string>();
            foreach (var (name, openMpi) in Candidates(forced))
            {
                if (!NativeLibrary.TryLoad(name, out var lib)) { tried.Add(name); continue; }
                // libmpi.so.12 may be an MPICH ABI library; OpenMPI always exports ompi_mpi_comm_world.
                bool isOmpi = NativeLibrary.TryGetExport(lib, "ompi_mpi_comm_world", out _);
                return _loaded = new MpiLibrary(lib, name, isOmpi || (openMpi && name.Contains("so.40", StringComparison.Ordinal)));
            }
            _loadError = $"no MPI library found (tried {string.Join(", ", tried)}); install OpenMPI (apt-get install openmpi-bin) or MPICH (mpich), or set DSS_MPI_LIBRARY to the library's path.";
            return null;
        }
    }

    public static string LoadError => _loadError ?? "";

    /// <summary>MPI_Init_thread(MPI_THREAD_MULTIPLE) once per process (no-op when already initialised).</summary>
    public void EnsureInitialized()
    {
        int flag;
        Check(Initialized(&flag), "MPI_Initialized");
        if (flag != 0) return;
        int provided;
        Check(InitThread(null, 0, ThreadMultiple, &provided), "MPI_Init_thread");
        if (provided < ThreadMultiple)
            throw new InvalidOperationException($"{Name} provides thread level {provided}, but the mpi backend needs MPI_THREAD_MULTIPLE (3): collectives and point-to-point run on separate threads.");
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            int done;
            if (Finalized(&done) == Success && done == 0) Finalize();
        };
    }

    /// <summary>The MPI datatype carrying elements of <paramref name="dtype"/> (16-bit types travel as fp32 when reduced).</summary>
    public nint TypeOf(torch.ScalarType dtype) => dtype switch
    {
        torch.ScalarType.Float32 => Float,
        torch.ScalarType.Float64 => Double,
        torch.ScalarType.Int32 => Int,
        torch.ScalarType.Int64 => LongLong,
        _ => throw new ArgumentException($"dtype {dtype} has no MPI reduction type; 16-bit types are reduced in float32."),
    };

    public nint OpOf(ReduceOp op) => op switch { ReduceOp.Max => OpMax, ReduceOp.Min => OpMin, _ => OpSum };

    /// <summary>Throws with MPI's error text when <paramref name="rc"/> is not MPI_SUCCESS.</summary>
    public void Check(int rc, string call)
    {
        if (rc == Success) return;
        var buf = stackalloc byte[512];
        int len = 0;
        string text = ErrorString(rc, buf, &len) == Success ? System.Text.Encoding.ASCII.GetString(buf, Math.Clamp(len, 0, 511)) : $"error {rc}";
        throw new InvalidOperationException($"{call} failed in {Name}: {text}");
    }
}
