using DeepSpeedSharp.Samples.Bert;
using DeepSpeedSharp.Samples.Shared;

return SampleMain.Run("bert", () => new Trainer(BertOptions.Parse(args)).Run());
