using System.Reflection;

namespace DeepSpeedSharp.TestWorker;

/// <summary>Dispatches `TestWorker SCENARIO [ARGS...]` to an <see cref="IScenario"/>.</summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        args = args.Where(a => !a.StartsWith("--local_rank=", StringComparison.Ordinal)).ToArray(); // added by `dss launch`
        var scenarios = Assembly.GetExecutingAssembly().GetTypes()
            .Where(t => typeof(IScenario).IsAssignableFrom(t) && !t.IsAbstract && !t.IsInterface)
            .Select(t => (IScenario)Activator.CreateInstance(t)!)
            .ToDictionary(s => s.Name);
        if (args.Length == 0 || !scenarios.TryGetValue(args[0], out var scenario))
        {
            Console.Error.WriteLine($"usage: TestWorker SCENARIO [ARGS...]; scenarios: {string.Join(", ", scenarios.Keys.Order())}");
            return 2;
        }
        return scenario.Run(args[1..]);
    }
}
