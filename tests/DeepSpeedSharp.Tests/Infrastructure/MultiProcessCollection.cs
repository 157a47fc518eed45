namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// Test classes that start several processes share this collection, so they run one after another: on a 2-core
/// machine, two multi-rank trainings at once only make both slower (and their timeouts flakier).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MultiProcessCollection
{
    public const string Name = "MultiProcess";
}
