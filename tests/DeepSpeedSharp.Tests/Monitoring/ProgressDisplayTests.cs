using System.Text.RegularExpressions;
using DeepSpeedSharp.Monitoring;
using Spectre.Console;

namespace DeepSpeedSharp.Tests.Monitoring;

public class ProgressDisplayTests
{
    [Fact]
    public void RedirectedOutputGetsOnePlainLinePerUpdate()
    {
        var sw = new StringWriter();
        using (var display = TrainingProgressDisplay.StartPlain(4, 512, sw))
        {
            Assert.False(display.IsLive);
            for (int s = 1; s <= 3; s++)
            {
                Thread.Sleep(20);
                display.Update(s, 5.0 - s, 1e-3);
            }
        }
        var lines = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(3, lines.Length);
        Assert.StartsWith("step 1/4 loss 4.000000 lr 0.001", lines[0]);
        var last = Regex.Match(lines[2], @"^step 3/4 loss 2\.000000 lr 0\.001 tokens/s (\d+) ETA (\d+):(\d\d):(\d\d)$");
        Assert.True(last.Success, lines[2]);
        // Steps take ≥ 20 ms here, so 512 tokens per step is at most 25,600 tokens/s.
        Assert.InRange(long.Parse(last.Groups[1].Value), 1, 25_600);
        Assert.DoesNotContain("\u001b[", sw.ToString()); // no terminal escapes in plain mode
    }

    [Fact]
    public void AfterAResumeTokensPerSecondCountsOnlyTheStepsThisRunTook()
    {
        var sw = new StringWriter();
        using (var display = TrainingProgressDisplay.StartPlain(100, 512, sw))
            for (int s = 51; s <= 53; s++)
            {
                Thread.Sleep(20);
                display.Update(s, 1.0, 1e-3);
            }
        var lines = sw.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(3, lines.Length);
        // Resumed at step 51: every line's speed comes from steps this run took (≥ 20 ms each), not from 50 steps at once.
        foreach (var line in lines)
        {
            var m = Regex.Match(line, @"tokens/s (\d+)");
            Assert.True(m.Success, line);
            Assert.InRange(long.Parse(m.Groups[1].Value), 1, 25_600);
        }
    }

    [Fact]
    public void InteractiveTerminalGetsALiveProgressBar()
    {
        var sw = new StringWriter();
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Ansi = AnsiSupport.Yes, Interactive = InteractionSupport.Yes, ColorSystem = ColorSystemSupport.NoColors,
            Out = new AnsiConsoleOutput(sw),
        });
        using (var display = TrainingProgressDisplay.StartLive(2, 0, console))
        {
            Assert.True(display.IsLive);
            display.Update(1, 3.25, 0.5);
            display.Update(2, 3.125, 0.25);
        }
        string output = sw.ToString();
        Assert.Contains("step 2/2 loss 3.125000 lr 0.25", output);
        Assert.Contains("100%", output);
        Assert.Contains("\u001b[", output); // redrawn in place with cursor movement
    }
}
