using DeepSpeedSharp.Samples.Llama;
using DeepSpeedSharp.Samples.Shared;

return SampleMain.Run("llama", () => new Trainer(LlamaOptions.Parse(args)).Run());
