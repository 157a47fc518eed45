using TorchSharp;

namespace DeepSpeedSharp.Tests;

public class SmokeTests
{
    [Fact]
    public void TorchSharpNativeLibraryLoads() => Assert.Equal(3f, torch.ones(3).sum().item<float>());
}
