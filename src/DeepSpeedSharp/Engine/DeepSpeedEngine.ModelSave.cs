using DeepSpeedSharp.IO;
using DeepSpeedSharp.Utils;
using DeepSpeedSharp.Weights;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Engine;

public partial class DeepSpeedEngine
{
    /// <summary>
    /// DeepSpeed's <c>save_16bit_model</c>: writes the model's weights in its own dtype (fp32, bf16 or fp16) under its
    /// parameter names to <c>saveDir/saveFilename</c> as safetensors (written to a temporary file, then renamed).
    /// Call it on every rank; rank 0 writes. Under ZeRO-3 the parameters are gathered one at a time, and only when
    /// <c>stage3_gather_16bit_weights_on_model_save</c> is true — otherwise nothing is written and false is returned,
    /// as in DeepSpeed. With tensor or pipeline parallelism the slices and stages are gathered into whole tensors
    /// (<see cref="WholeModelWeights"/>; DeepSpeed writes rank 0's slices) under this rank's module names; ZeRO-3 there
    /// is refused with a warning and false.
    /// </summary>
    public bool Save16BitModel(string saveDir, string saveFilename = "model.safetensors")
    {
        if (ModelParallelWorldSize > 1)
        {
            if (strategy?.PartitionsParameters == true)
            {
                Log.Warn("did not save the model: ZeRO-3 with tensor or pipeline parallelism does not gather whole-model weights; save a checkpoint and export it");
                return false;
            }
            WholeModelWeights.Save(Module, Path.Combine(saveDir, saveFilename), Mpu);
            return true;
        }
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            if (strategy?.WholeWeightsRefusal is { } refusal)
            {
                Log.Warn($"did not save the model: {refusal}");
                return false;
            }
            strategy?.ForEachWholeParameter((name, full) =>
            {
                if (GlobalRank == 0) tensors[name] = full.detach().cpu().clone();
            });
            if (GlobalRank == 0)
            {
                foreach (var (name, p) in Module.named_parameters())
                    if (!tensors.ContainsKey(name)) tensors[name] = p.detach().cpu().clone();
                SafeTensors.WriteAtomic(Path.Combine(saveDir, saveFilename), tensors);
            }
            DataParallelGroup.Barrier();
            return true;
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }
}
