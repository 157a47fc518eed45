using System.Diagnostics;
using System.Runtime.InteropServices;
using DeepSpeedSharp.Comm.Core;

namespace DeepSpeedSharp.Comm.Mpi;

/// <summary>
/// MPI backend (ranks started by mpirun/mpiexec). Collectives run on a duplicate of the group's communicator,
/// point-to-point on another, group creation (MPI_Comm_split) on a third, so the three never interleave on one
/// communicator. Every collective first all-gathers the 40-byte descriptor to detect mismatched calls. Reductions of
/// bfloat16/float16 are widened into a reused float32 buffer (MPI has no 16-bit float op) and rounded back once;
/// Avg is a Sum divided by the group size. Counts above DSS_MPI_MAX_COUNT (default 2^31-1, MPI's int limit) are
/// split into several calls. MPI calls cannot be interrupted: a watchdog aborts the job (MPI_Abort, after printing a
/// <see cref="DistributedException"/> message) when a collective exceeds the timeout; mpirun ends every rank when one dies.
/// </summary>
internal sealed unsafe partial class MpiProcessGroup : ProcessGroup
{
    private readonly MpiLibrary _mpi;
    private readonly nint _coll, _p2p, _split;
    private readonly int _n, _me;
    private readonly long _max;
    private readonly Timer _watchdog;
    private readonly OpDescriptor* _descs;
    private float* _f32;
    private long _f32Count;
    private long _opStart;
    private string _opName = "";
    private long _opSeq;
    private string _opLabel = "";

    private MpiProcessGroup(MpiLibrary mpi, nint parent, int[] ranks, int globalRank, TimeSpan timeout, CommsLogger logger, long maxCount)
        : base(ranks, globalRank, "mpi", timeout, logger)
    {
        _mpi = mpi;
        _max = maxCount;
        nint c, p, s;
        mpi.Check(mpi.CommDup(parent, &c), "MPI_Comm_dup");
        mpi.Check(mpi.CommDup(parent, &p), "MPI_Comm_dup");
        mpi.Check(mpi.CommDup(parent, &s), "MPI_Comm_dup");
        _coll = c; _p2p = p; _split = s;
        _n = ranks.Length;
        _me = Rank;
        int r;
        mpi.Check(mpi.CommRank(_coll, &r), "MPI_Comm_rank");
        if (r != _me) throw new InvalidOperationException($"MPI rank {r} differs from group rank {_me}: the MPI communicator and the group disagree.");
        _descs = (OpDescriptor*)NativeMemory.Alloc((nuint)_n, (nuint)OpDescriptor.SizeInBytes);
        _watchdog = new Timer(_ => Watch(), null, 1000, 1000);
    }

    /// <summary>The world group: MPI_COMM_WORLD, whose ranks must match RANK/OMPI_COMM_WORLD_RANK. Every operation of it and
    /// of its subgroups carries at most <paramref name="maxCount"/> elements per MPI call (<see cref="CommTuning.MpiMaxCount"/>);
    /// larger ones are split.</summary>
    public static MpiProcessGroup CreateWorld(MpiLibrary mpi, int worldSize, int rank, TimeSpan timeout, CommsLogger logger, long maxCount)
    {
        mpi.EnsureInitialized();
        int size, r;
        mpi.Check(mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
        mpi.Check(mpi.CommRank(mpi.CommWorld, &r), "MPI_Comm_rank");
        if (size != worldSize || r != rank)
            throw new InvalidOperationException($"MPI reports rank {r} of {size} but the environment says rank {rank} of {worldSize}: start the job with mpirun/mpiexec only (not also with the dss launcher).");
        return new MpiProcessGroup(mpi, mpi.CommWorld, Enumerable.Range(0, size).ToArray(), rank, timeout, logger, maxCount);
    }

    /// <summary>A sub-group: MPI_Comm_split over this group (every member calls it, members of <paramref name="ranks"/> get the group).</summary>
    public ProcessGroup Split(int[] ranks)
    {
        int idx = Array.IndexOf(ranks, GlobalRank);
        nint sub;
        _mpi.Check(_mpi.CommSplit(_split, idx >= 0 ? 0 : MpiLibrary.Undefined, Math.Max(idx, 0), &sub), "MPI_Comm_split");
        if (idx < 0) return new NonMemberProcessGroup(ranks, GlobalRank, "mpi", Timeout, Logger);
        try { return new MpiProcessGroup(_mpi, sub, ranks, GlobalRank, Timeout, Logger, _max); }
        finally { _mpi.CommFree(&sub); }
    }

    /// <summary>Every member's <paramref name="value"/> (UTF-8, at most 255 bytes), in rank order; collective, caller's thread.</summary>
    public string[] AllGatherStrings(string value)
    {
        const int width = 256;
        var bytes = System.Text.Encoding.UTF8.GetBytes(value);
        if (bytes.Length >= width) throw new ArgumentException($"host id '{value}' is longer than {width - 1} bytes.");
        var mine = new byte[width];
        bytes.CopyTo(mine, 0);
        var all = new byte[width * _n];
        fixed (byte* m = mine, a = all)
            _mpi.Check(_mpi.Allgather(m, width, _mpi.Byte, a, width, _mpi.Byte, _split), "MPI_Allgather");
        return Enumerable.Range(0, _n).Select(r => System.Text.Encoding.UTF8.GetString(all, r * width, width).TrimEnd('\0')).ToArray();
    }

    private void Watch()
    {
        long start = Volatile.Read(ref _opStart);
        if (start == 0 || Stopwatch.GetElapsedTime(start) < Timeout) return;
        var e = new DistributedException(_opName, _opSeq, [],
            $"{_opLabel} on rank {GlobalRank} timed out after {Timeout} in {_mpi.Name}; MPI calls cannot be cancelled, so the job is aborted (MPI_Abort).");
        Console.Error.WriteLine($"DistributedException: {e.Message}");
        _mpi.Abort(_mpi.CommWorld, 1);
    }

    /// <summary>Marks a collective as running (for the watchdog) and checks every rank called the same operation.</summary>
    private void Begin(in OpContext ctx)
    {
        _opName = ctx.Name;
        _opSeq = ctx.ErrorSeq;
        _opLabel = ctx.Label.ToString();
        Volatile.Write(ref _opStart, Stopwatch.GetTimestamp());
        var mine = ctx.Descriptor;
        try
        {
                _mpi.Check(_mpi.Allgather(&mine, OpDescriptor.SizeInBytes, _mpi.Byte, _descs, OpDescriptor.SizeInBytes, _mpi.Byte, _coll), "MPI_Allgather");
                for (int r = 0; r < _n; r++)
                    if (!_descs[r].Equals(mine))
                        throw new DistributedException(ctx.Name, ctx.ErrorSeq, [],
                        $"collective mismatch at sequence number {ctx.Label.Seq}: rank {GlobalRank} called {mine.Describe()} but rank {GetGlobalRank(r)} called {_descs[r].Describe()}.");
        }
        catch
        {
            End();
            throw;
        }
    }

    private void End() => Volatile.Write(ref _opStart, 0);

    /// <summary>A reused float32 buffer of at least <paramref name="count"/> elements (collective thread only).</summary>
    private float* F32(long count)
    {
        if (count > _f32Count)
        {
            NativeMemory.AlignedFree(_f32);
            _f32 = (float*)NativeMemory.AlignedAlloc((nuint)(Math.Max(count, 1) * 4), 64);
            new Span<byte>(_f32, (int)Math.Min(count * 4, int.MaxValue)).Clear(); // touch once
            _f32Count = count;
        }
        return _f32;
    }

    protected override void DisposeBackend()
    {
        _watchdog.Dispose();
        nint c = _coll, p = _p2p, s = _split;
        int done;
        if (_mpi.Finalized(&done) == MpiLibrary.Success && done == 0)
        {
            _mpi.CommFree(&c); _mpi.CommFree(&p); _mpi.CommFree(&s);
        }
        NativeMemory.Free(_descs);
        NativeMemory.AlignedFree(_f32);
    }
}
