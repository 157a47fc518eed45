using DeepSpeedSharp.Training;
using System.Text.Json.Nodes;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.DataParallel;

namespace DeepSpeedSharp.Zero;

/// <summary>
/// Checkpoint view of stage 3: each parameter is partitioned on its own, so this rank holds one piece of every
/// parameter's flat range — [offset_i + r·P_i, offset_i + min(n_i, (r+1)·P_i)) — at position MasterOffset_i of the
/// fp32 master buffer, and writes exactly those pieces.
/// </summary>
internal sealed partial class Zero3Strategy : ICheckpointableStrategy
{
    private FlatLayout? checkpointLayout;

    public int Stage => 3;

    public ProcessGroup CheckpointGroup => group;

    public FlatLayout Layout => checkpointLayout ??= new FlatLayout(
        parameters.Select(z => z.Param).ToList(), parameters.Select(z => z.Shape).ToList(), parameters.Select(z => z.DType).ToList(), 1);

    public IReadOnlyList<StateSegment> Segments
    {
        get
        {
            var layout = Layout;
            var segments = new List<StateSegment>();
            for (int i = 0; i < parameters.Count; i++)
            {
                var (start, count) = parameters[i].OwnRange;
                long length = Math.Clamp(parameters[i].Numel - start, 0, count);
                if (length <= 0) continue;
                var (optimized, offset) = masterGroups.Locate(parameters[i].MasterOffset);
                segments.Add(new StateSegment(layout.Offsets[i] + start, length, optimized, offset));
            }
            return segments;
        }
    }

    public bool WritesSegments => true;

    /// <summary>Re-gathers persistent parameters from the loaded partitions, releases the others, clears gradients.</summary>
    public void AfterLoad()
    {
        MasterReload.FromModelWeightsIfAsked(master, Precision?.ModelDType ?? master.dtype, loadFromFp32Weights);
        foreach (var zp in parameters)
        {
            zp.WeightsChanged();
            if (zp.Persistent) zp.Refresh(master);
            else zp.Release();
        }
        ZeroGrad();
    }

    /// <summary>The precision state (the fp16 loss scaler), when the engine has one.</summary>
    public JsonObject SaveExtraState() => Precision?.SaveState() ?? new();

    /// <summary>Restores what <see cref="SaveExtraState"/> wrote.</summary>
    public void LoadExtraState(JsonObject sections) => Precision?.LoadState(sections);

    /// <summary>The engine's precision policy (set by the engine after the strategy is built).</summary>
    public DeepSpeedSharp.Precision.PrecisionPolicy? Precision { get; set; }
}
