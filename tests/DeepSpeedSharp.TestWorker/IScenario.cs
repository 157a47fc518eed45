namespace DeepSpeedSharp.TestWorker;

/// <summary>One thing a test rank can do. Registered by reflection: add a file, no list to edit.</summary>
public interface IScenario
{
    /// <summary>The first argument that selects this scenario.</summary>
    string Name { get; }

    /// <summary>Runs on one rank; the return value is the process exit code.</summary>
    int Run(string[] args);
}
