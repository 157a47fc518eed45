using DeepSpeedSharp.Config;
using Xunit.Abstractions;
using static DeepSpeedSharp.Tests.Config.ConfigTestHelpers;

namespace DeepSpeedSharp.Tests.Config;

/// <summary>
/// The 54 real DeepSpeed configs of ../shared/data/ds-configs: each either loads or is rejected with the reason
/// listed here (null = loads).
/// </summary>
public class ConfigCorpusTests(ITestOutputHelper output)
{
    private static readonly Dictionary<string, string?> Expected = new()
    {
        ["accel__examples_alst_ulysses_sequence_parallelism_sp-alst.ds-config.json"] = null,
        ["accel__examples_deepspeed_config_templates_zero_stage2_offload_config.json"] = "scheduler.params.total_num_steps is required for WarmupDecayLR and cannot be \"auto\"",
        ["accel__examples_deepspeed_config_templates_zero_stage3_offload_config.json"] = "scheduler.params.total_num_steps is required for WarmupDecayLR and cannot be \"auto\"",
        ["accel__tests_deepspeed_ds_config_zero3.json"] = null,
        ["bigsci__examples_curriculum_learning_ds_config_cl.json"] = "curriculum learning is not implemented",
        ["bigsci__tests_ds_config.json"] = null,
        ["bigsci__tests_ds_config_bf16.json"] = null,
        ["dsx__Megatron-LM-v1.1.5-3D_parallelism_examples_ds_config.json"] = null,
        ["dsx__Megatron-LM-v1.1.5-ZeRO3_examples_ds_zero_stage_3_config.json"] = "unknown key 'stage3_param_persitence_threshold' in zero_optimization; did you mean 'stage3_param_persistence_threshold'?",
        ["dsx__Megatron-LM-v1.1.5-ZeRO3_examples_ds_zero_stage_3_config_release.json"] = "unknown key 'stage3_param_persitance_threshold' in zero_optimization; did you mean 'stage3_param_persistence_threshold'?",
        ["dsx__Megatron-LM-v1.1.5-ZeRO3_examples_ds_zero_stage_infinity_config.json"] = "unknown key 'stage3_param_persitence_threshold' in zero_optimization",
        ["dsx__Megatron-LM_scripts_ds_zero-offload_config.json"] = null,
        ["dsx__Megatron-LM_scripts_ds_zero2_cpu_offload_config.json"] = null,
        ["dsx__Megatron-LM_scripts_ds_zero3_config.json"] = "unknown key 'stage3_param_persitance_threshold' in zero_optimization",
        ["dsx__cifar_ds_config.json"] = null,
        ["dsx__compression_gpt2_config_ds_config_W8A8_Qgroup64_fp16.json"] = "compression training is not implemented",
        ["dsx__inference_huggingface_ds_config_nvme.json"] = "zero_optimization.stage3_max_reuse_distance: must be an integer ≥ 0, got -1",
        ["dsx__qanet_deepspeed_bsz512_1cycle.json"] = null,
        ["dsx__training_BingBertGlue_glue_bert_base.json"] = null,
        ["dsx__training_alpaca-lora-zero3_ds_config.json"] = null,
        ["dsx__training_autotuning_hf_bert-base_ds_config_tune.json"] = null,
        ["dsx__training_autotuning_hf_dsconfigs_ds_config_fp16_z3.json"] = null,
        ["dsx__training_bing_bert_1-bit_adam_nccl_deepspeed_bsz4k_onebitadam_config_seq128_nccl.json"] = "optimizer.type 'OneBitAdam' is a DeepSpeed optimizer DeepSpeedSharp does not implement",
        ["dsx__training_bing_bert_deepspeed_bsz4k_progressive_layer_drop_config_seq128.json"] = "progressive layer drop is not implemented",
        ["dsx__training_bing_bert_deepspeed_bsz64k_lamb_config_seq128.json"] = "optimizer.type 'Lamb' is a DeepSpeed optimizer DeepSpeedSharp does not implement",
        ["dsx__training_data_efficiency_gpt_finetuning_config_ds_config_gpt_base_random_ltd.json"] = "data efficiency (curriculum / random-LTD) is not implemented",
        ["dsx__training_gan_gan_deepspeed_config.json"] = null,
        ["dsx__training_imagenet_config_ds_config.json"] = "unknown key 'cuda_visible_devices' at the top level",
        ["dsx__training_imagenet_config_ds_fp16_z1_config.json"] = "'fp16.auto_cast' = true is not supported by DeepSpeedSharp",
        ["dsx__training_pipeline_parallelism_ds_config.json"] = null,
        ["habmr__PyTorch_examples_DeepSpeed_cifar_example_ds_config.json"] = null,
        ["habmr__PyTorch_nlp_DeepSpeedExamples_deepspeed-bert_scripts_deepspeed_config_bert_1.5b.json"] = null,
        ["habmr__PyTorch_nlp_DeepSpeedExamples_deepspeed-bert_scripts_deepspeed_config_bert_5b_lans.json"] = null,
        ["hftf__tests_deepspeed_ds_config_zero2.json"] = null,
        ["hftf__tests_deepspeed_ds_config_zero3.json"] = null,
        ["llamafac__examples_deepspeed_ds_z2_autotp_config.json"] = "AutoTP is not implemented",
        ["llamafac__examples_deepspeed_ds_z3_alst_config.json"] = "unknown key 'sequence_parallel' at the top level",
        ["llamafac__examples_deepspeed_ds_z3_config_gaudi.json"] = null,
        ["llamafac__examples_deepspeed_ds_z3_offload_config.json"] = "unknown key 'comms_config' at the top level",
        ["llamafac__examples_deepspeed_ds_z3_partial_offload_config.json"] = null,
        ["llamafac__examples_deepspeed_hparam_sweep_ds_z3_e11_act_ckpt.json"] = null,
        ["llamafac__examples_deepspeed_hparam_sweep_ds_z3_e9_quant_grads.json"] = null, // ZeRO++ qgZ
        ["megads__examples_deepspeed_curriculum_learning_ds_zero_stage_1_config_baseline.json"] = null,
        ["megads__examples_deepspeed_finetune_hf_llama_ds_config.json"] = null,
        ["megads__examples_deepspeed_universal_checkpointing_ds_config.json"] = null,
        ["opthab__examples_language-modeling_ds_falcon_180b_z3.json"] = null,
        ["opthab__examples_language-modeling_llama2_ds_zero3_config.json"] = null,
        ["opthab__examples_language-modeling_llama3_ds_zero1_config.json"] = null,
        ["opthab__examples_language-modeling_llama3_ds_zero3_4k.json"] = null,
        ["opthab__examples_language-modeling_mixtral_ds_zero3_config.json"] = null,
        // torch_adam: "torch_impl" — DeepSpeed only tests its truthiness; we require a boolean.
        ["opthab__examples_summarization_ds_flan_t5_z3_config_bf16.json"] = "optimizer.params.torch_adam: expected true or false, got a string \"torch_impl\"",
        ["opthab__tests_configs_deepspeed_zero_1.json"] = null,
        ["opthab__tests_configs_deepspeed_zero_2.json"] = null,
        ["opthab__tests_configs_deepspeed_zero_3_gaudi1.json"] = "optimizer.params.torch_adam: expected true or false, got a string \"torch_impl\"",
    };

    [Fact]
    public void EveryCorpusConfigLoadsOrIsRejectedForTheExpectedReason()
    {
        var dir = CorpusDir();
        if (dir == null)
        {
            output.WriteLine("SKIPPED: ../shared/data/ds-configs not found next to the repository; corpus not checked.");
            return;
        }
        var files = Directory.GetFiles(dir, "*.json").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(Expected.Keys.Order(StringComparer.Ordinal), files);
        var failures = new List<string>();
        foreach (var name in files)
        {
            var expected = Expected[name!];
            try
            {
                var c = DeepSpeedConfig.FromFile(Path.Combine(dir, name!));
                if (expected != null) failures.Add($"{name}: loaded, expected rejection containing \"{expected}\"");
                else Assert.Equal(c.ToJson(), DeepSpeedConfig.FromJson(c.ToJson()).ToJson());
            }
            catch (DeepSpeedConfigException e)
            {
                if (expected == null || !e.Message.Contains(expected, StringComparison.Ordinal))
                    failures.Add($"{name}: {e.Message} (expected {(expected == null ? "to load" : $"\"{expected}\"")})");
            }
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void CorpusSpotChecks()
    {
        var dir = CorpusDir();
        if (dir == null)
        {
            output.WriteLine("SKIPPED: corpus not found.");
            return;
        }
        // legacy cpu_offload migrated
        var megatron = DeepSpeedConfig.FromFile(Path.Combine(dir, "dsx__Megatron-LM_scripts_ds_zero-offload_config.json"));
        Assert.True(megatron.ZeroOptimization.OffloadOptimizer.Enabled);
        Assert.Equal(new BatchSizes(60, 12, 5), megatron.ResolveBatchSizes(1));
        // HF placeholders: batch sizes come from the program
        var hf = DeepSpeedConfig.FromFile(Path.Combine(dir, "hftf__tests_deepspeed_ds_config_zero2.json"));
        Assert.Equal(new BatchSizes(32, 4, 2), hf.ResolveBatchSizes(4, microBatchPerGpu: 4, gradientAccumulationSteps: 2));
        Assert.Equal(("adamw", 2), (hf.Optimizer!.Type, hf.ZeroOptimization.Stage));
        // OneCycle parameters
        var qanet = DeepSpeedConfig.FromFile(Path.Combine(dir, "dsx__qanet_deepspeed_bsz512_1cycle.json"));
        Assert.Equal(("OneCycle", 0.004, 0.015, 100, 100), (qanet.Scheduler!.Type, qanet.Scheduler.CycleMinLr, qanet.Scheduler.CycleMaxLr, qanet.Scheduler.CycleSecondStepSize!.Value, qanet.Scheduler.CycleFirstStairCount));
        // Gaudi: bf16 + grad_accum_dtype fp32 (the BF16 optimizer path)
        var universal = DeepSpeedConfig.FromFile(Path.Combine(dir, "megads__examples_deepspeed_universal_checkpointing_ds_config.json"));
        Assert.Equal(("bf16", "fp32", 1), (universal.Precision, universal.DataTypes.GradAccumDtype, universal.ZeroOptimization.Stage));
    }
}
