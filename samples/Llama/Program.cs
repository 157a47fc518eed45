using DeepSpeedSharp.Samples.Llama;
using DeepSpeedSharp.Samples.Shared;

return SampleMain.Run("llama", () =>
{
    var options = LlamaOptions.Parse(args);
    return options.HelpShown ? 0 : new Trainer(options).Run();
});
