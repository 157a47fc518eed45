using DeepSpeedSharp.Samples.Llama;

try
{
    var options = LlamaOptions.Parse(args);
    if (options.HelpShown) return 0;
    return new Trainer(options).Run();
}
catch (Exception e) when (e is ArgumentException or InvalidDataException or FileNotFoundException or DeepSpeedSharp.Config.DeepSpeedConfigException or InvalidOperationException)
{
    Console.Error.WriteLine(Environment.GetEnvironmentVariable("DSS_DEBUG") == "1" ? $"llama: error: {e}" : $"llama: error: {e.Message.ReplaceLineEndings(" ")}");
    return 2;
}
