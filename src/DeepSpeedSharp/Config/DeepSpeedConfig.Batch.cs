namespace DeepSpeedSharp.Config;

public sealed partial class DeepSpeedConfig
{
    /// <summary>
    /// Resolves the batch sizes exactly as DeepSpeed's <c>_set_batch_related_parameters</c> and <c>_batch_assertion</c>:
    /// any two of train / micro / accumulation determine the third; only train → accumulation 1; only micro →
    /// accumulation 1; none → error; the result must satisfy train = micro × accumulation × data-parallel world size. (With an enabled <c>elasticity</c>
    /// section the layout takes them from <c>Topology.ElasticBatch</c> instead.)
    /// Keys that are "auto" or absent in the file are filled from the arguments; a key given both in the file and as an
    /// argument must agree. The layout's rules (pipeline × ZeRO, virtual stages) are <c>Topology.ParallelLayout</c>'s, which calls this with its data-parallel size.
    /// </summary>
    public BatchSizes ResolveBatchSizes(int dataParallelWorldSize, int? trainBatchSize = null, int? microBatchPerGpu = null,
        int? gradientAccumulationSteps = null)
    {
        if (dataParallelWorldSize < 1)
            throw new DeepSpeedConfigException($"data-parallel world size must be ≥ 1, got {dataParallelWorldSize}");

        var train = Pick("train_batch_size", TrainBatchSize, trainBatchSize);
        var micro = Pick("train_micro_batch_size_per_gpu", TrainMicroBatchSizePerGpu, microBatchPerGpu);
        var gas = Pick("gradient_accumulation_steps", GradientAccumulationSteps, gradientAccumulationSteps);
        var world = dataParallelWorldSize;
        // An "auto" key nobody filled is acceptable only when the other two determine it; otherwise it would be guessed.
        var known = (train is null ? 0 : 1) + (micro is null ? 0 : 1) + (gas is null ? 0 : 1);
        foreach (var key in new[] { "train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps" })
        {
            var value = key == "train_batch_size" ? train : key == "gradient_accumulation_steps" ? gas : micro;
            if (value is null && AutoKeys.Contains(key) && known < 2)
                throw new DeepSpeedConfigException(
                    $"{key} is \"auto\" in the config and no value was passed; pass it to DeepSpeed.Initialize or write a number in the config");
        }

        // DeepSpeed's _set_batch_related_parameters, case by case (integer division as in Python's //).
        if (train is not null && micro is not null && gas is not null)
        {
        }
        else if (train is not null && micro is not null)
        {
            gas = train / micro / world;
        }
        else if (train is not null && gas is not null)
        {
            micro = train / world / gas;
        }
        else if (micro is not null && gas is not null)
        {
            train = (long)micro * gas * world > int.MaxValue
                ? throw new DeepSpeedConfigException($"train_batch_size = {micro} × {gas} × {world} does not fit in an int")
                : micro * gas * world;
        }
        else if (train is not null)
        {
            gas = 1;
            micro = train / world;
        }
        else if (micro is not null)
        {
            train = (long)micro * world > int.MaxValue
                ? throw new DeepSpeedConfigException($"train_batch_size = {micro} × {world} does not fit in an int")
                : micro * world;
            gas = 1;
        }
        else
        {
            throw new DeepSpeedConfigException(
                "either train_batch_size or train_micro_batch_size_per_gpu needs to be provided (in the config or to DeepSpeed.Initialize)");
        }

        // DeepSpeed's _batch_assertion.
        if (train <= 0) throw new DeepSpeedConfigException($"train_batch_size must be > 0, got {train} (world size {world})");
        if (micro <= 0)
            throw new DeepSpeedConfigException($"train_micro_batch_size_per_gpu must be > 0, got {micro} (train_batch_size {train}, gradient_accumulation_steps {gas}, data-parallel world size {world})");
        if (gas <= 0)
            throw new DeepSpeedConfigException($"gradient_accumulation_steps must be > 0, got {gas} (train_batch_size {train}, train_micro_batch_size_per_gpu {micro}, data-parallel world size {world})");
        if ((long)micro!.Value * gas!.Value * world != train)
            throw new DeepSpeedConfigException(
                $"train_batch_size ({train}) != train_micro_batch_size_per_gpu ({micro}) × gradient_accumulation_steps ({gas}) × data-parallel world size ({world})");
        return new BatchSizes(train!.Value, micro.Value, gas.Value);
    }

    private int? Pick(string key, int? fromConfig, int? fromCaller)
    {
        if (fromCaller is <= 0) throw new DeepSpeedConfigException($"{key} passed by the program must be a positive integer, got {fromCaller}");
        if (fromConfig is not null)
        {
            if (fromCaller is not null && fromCaller != fromConfig)
                throw new DeepSpeedConfigException($"{key} is {fromConfig} in the config but {fromCaller} was passed by the program; make them agree or set it to \"auto\" in the config");
            return fromConfig;
        }
        return fromCaller;
    }
}
