using DeepSpeedSharp.Samples.Gpt;

try
{
    var options = GptOptions.Parse(args);
    if (options.HelpShown) return 0;
    return options.DescribeParameters ? ParameterDescription.Print(options.Model, Console.Out) : new Trainer(options).Run();
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DeepSpeedSharp.Config.DeepSpeedConfigException or InvalidOperationException)
{
    Console.Error.WriteLine(Environment.GetEnvironmentVariable("DSS_DEBUG") == "1" ? $"gpt: error: {e}" : $"gpt: error: {e.Message}");
    return 2;
}
