using DeepSpeedSharp.Native;

namespace DeepSpeedSharp.Tests.Native;

/// <summary>ZeRO-3's freed bytes trigger glibc's malloc_trim once every <see cref="AllocatorTuning.TrimEvery"/> bytes.</summary>
public class AllocatorTuningTests
{
    [Fact]
    public void FreedBytesTrimOncePerThreshold()
    {
        int trims = 0;
        var budget = new TrimBudget(100, () => { trims++; return true; });
        Assert.False(budget.Freed(60));
        Assert.False(budget.Freed(0));
        Assert.False(budget.Freed(-500));
        Assert.True(budget.Freed(40));
        Assert.Equal(1, trims);
        Assert.False(budget.Freed(99));
        Assert.True(budget.Freed(250));
        Assert.Equal(2, trims);
    }

    [Fact]
    public void FreesBelowTheMinimumDoNotCount()
    {
        int trims = 0;
        var budget = new TrimBudget(100, () => { trims++; return true; }, minimum: 50);
        for (int i = 0; i < 10; i++) Assert.False(budget.Freed(49));
        Assert.False(budget.Freed(50));
        Assert.True(budget.Freed(50));
        Assert.Equal(1, trims);
    }

    [Fact]
    public void MallocTrimIsCallableOnLinux()
    {
        if (!OperatingSystem.IsLinux()) return;
        long before = AllocatorTuning.Trims;
        Assert.True(AllocatorTuning.Trim(), "malloc_trim should be callable on Linux with glibc");
        Assert.True(AllocatorTuning.Trims > before);
    }
}
