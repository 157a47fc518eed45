namespace DeepSpeedSharp.TestWorker.Scenarios;

/// <summary>Prints the named environment variables as NAME=VALUE lines, then exits with the given code.</summary>
public sealed class EchoEnvScenario : IScenario
{
    public string Name => "echo-env";

    public int Run(string[] args)
    {
        int code = 0;
        foreach (var a in args)
        {
            if (a.StartsWith("--exit=", StringComparison.Ordinal)) code = int.Parse(a[7..]);
            else Console.WriteLine($"{a}={Environment.GetEnvironmentVariable(a)}");
        }
        return code;
    }
}
