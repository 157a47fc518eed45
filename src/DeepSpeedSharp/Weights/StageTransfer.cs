using System.Text;
using System.Text.Json;
using DeepSpeedSharp.Comm;
using DeepSpeedSharp.Topology;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Weights;

/// <summary>The collectives of <see cref="WholeModelWeights.Save"/>: tensor-parallel slices into whole tensors, pipeline stages to the first stage.</summary>
internal static class StageTransfer
{
    /// <summary>
    /// The whole parameter on tensor rank 0 (a CPU copy), null on the other tensor ranks: slices split along
    /// <paramref name="dim"/> (≥ 0) are all-gathered over the tensor group and concatenated in rank order.
    /// </summary>
    public static Tensor? GatherSlices(Parameter p, int dim, TensorParallelContext tp)
    {
        using var noGrad = no_grad();
        if (dim < 0 || tp.Group == null) return tp.Rank == 0 ? p.detach().cpu().clone() : null;
        using var scope = NewDisposeScope();
        var local = p.detach().contiguous();
        var slices = Enumerable.Range(0, tp.Size).Select(_ => empty_like(local)).ToList();
        tp.Group.AllGather(slices, local);
        return tp.Rank == 0 ? cat(slices, dim).cpu().MoveToOuterDisposeScope() : null;
    }

    private sealed record Header(string Name, int DType, long[] Shape);

    /// <summary>
    /// Every later stage of <paramref name="pipe"/> sends its tensors (a JSON header of names, dtypes and shapes, then
    /// the data) to the stage of group rank 0, which appends them to its own <paramref name="tensors"/>; the senders'
    /// lists are emptied (and their tensors disposed).
    /// </summary>
    public static void ToFirstStage(ProcessGroup pipe, List<(string Name, Tensor Tensor)> tensors)
    {
        int first = pipe.GetGlobalRank(0);
        if (pipe.Rank != 0)
        {
            var header = JsonSerializer.SerializeToUtf8Bytes(tensors.Select(t => new Header(t.Name, (int)t.Tensor.dtype, t.Tensor.shape)).ToList());
            using (var length = tensor(new long[] { header.Length })) pipe.Send(length, first);
            using (var bytes = tensor(header.Select(b => unchecked((sbyte)b)).ToArray())) pipe.Send(bytes, first);
            foreach (var (_, t) in tensors)
            {
                if (t.numel() > 0)
                    using (var data = t.contiguous()) pipe.Send(data, first);
                t.Dispose();
            }
            tensors.Clear();
            return;
        }
        for (int r = 1; r < pipe.Size; r++)
        {
            int src = pipe.GetGlobalRank(r);
            using var length = zeros(1, ScalarType.Int64);
            pipe.Recv(length, src);
            using var bytes = zeros(length.item<long>(), ScalarType.Int8);
            pipe.Recv(bytes, src);
            var json = bytes.data<sbyte>().ToArray().Select(b => unchecked((byte)b)).ToArray();
            foreach (var h in JsonSerializer.Deserialize<List<Header>>(Encoding.UTF8.GetString(json))!)
            {
                var t = empty(h.Shape, (ScalarType)h.DType);
                if (t.numel() > 0) pipe.Recv(t, src);
                tensors.Add((h.Name, t));
            }
        }
    }
}
