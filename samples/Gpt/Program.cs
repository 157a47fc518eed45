using DeepSpeedSharp.Samples.Gpt;
using DeepSpeedSharp.Samples.Shared;

return SampleMain.Run("gpt", () =>
{
    var options = GptOptions.Parse(args);
    if (options.HelpShown) return 0;
    return options.DescribeParameters ? ParameterDescription.Print(options.Model, Console.Out) : new Trainer(options).Run();
});
