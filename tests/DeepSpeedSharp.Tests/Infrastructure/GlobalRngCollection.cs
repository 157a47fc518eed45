namespace DeepSpeedSharp.Tests.Infrastructure;

/// <summary>
/// In-process engine tests whose results depend on torch's global random generator (dropout, <c>manual_seed</c>,
/// <c>DeepSpeed.Initialize(seed:)</c>): they run alone, so that another test class seeding or drawing from the global
/// generator at the same moment cannot change them (exact-resume tests compare losses bit for bit).
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class GlobalRngCollection
{
    public const string Name = "GlobalRng";
}
