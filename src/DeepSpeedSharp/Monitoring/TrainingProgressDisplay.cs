using System.Diagnostics;
using System.Globalization;
using Spectre.Console;

namespace DeepSpeedSharp.Monitoring;

/// <summary>
/// A progress view of a training run (step, loss, learning rate, tokens/s, ETA). On an interactive terminal it is a
/// live Spectre.Console progress bar redrawn in place; when output is redirected (a log file, the launcher's pipes,
/// CI) it writes one plain line per update instead:
/// <c>step 10/100 loss 4.123456 lr 0.001 tokens/s 12345 ETA 0:01:23</c>. Call it from rank 0 only.
/// </summary>
public sealed class TrainingProgressDisplay : IDisposable
{
    private readonly long totalSteps;
    private readonly long tokensPerStep;
    private readonly TextWriter? plain;
    private readonly Stopwatch clock = Stopwatch.StartNew();
    private readonly ManualResetEventSlim stop = new();
    private readonly Thread? renderer;
    private readonly object gate = new();
    private (long Step, double Loss, double Lr) latest;
    private TimeSpan firstStepAt;
    private long firstStep = 1;
    private bool disposed;

    private TrainingProgressDisplay(long totalSteps, long tokensPerStep, IAnsiConsole? live, TextWriter? plain)
    {
        if (totalSteps < 0) throw new ArgumentOutOfRangeException(nameof(totalSteps), totalSteps, "total steps must be ≥ 0");
        this.totalSteps = totalSteps;
        this.tokensPerStep = tokensPerStep;
        this.plain = plain;
        if (live != null)
        {
            renderer = new Thread(() => Render(live)) { IsBackground = true, Name = "dss-progress" };
            renderer.Start();
        }
    }

    /// <summary>
    /// Starts a display for <paramref name="totalSteps"/> steps of <paramref name="tokensPerStep"/> tokens each (0 hides
    /// tokens/s). Live when standard output is an interactive terminal, plain lines on <see cref="Console.Out"/> otherwise.
    /// </summary>
    public static TrainingProgressDisplay Start(long totalSteps, long tokensPerStep) =>
        !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive
            ? new(totalSteps, tokensPerStep, AnsiConsole.Console, null)
            : new(totalSteps, tokensPerStep, null, Console.Out);

    /// <summary>A live display on <paramref name="console"/> (tests and hosts that own a console).</summary>
    public static TrainingProgressDisplay StartLive(long totalSteps, long tokensPerStep, IAnsiConsole console) =>
        new(totalSteps, tokensPerStep, console ?? throw new ArgumentNullException(nameof(console)), null);

    /// <summary>A plain-line display writing to <paramref name="output"/>.</summary>
    public static TrainingProgressDisplay StartPlain(long totalSteps, long tokensPerStep, TextWriter output) =>
        new(totalSteps, tokensPerStep, null, output ?? throw new ArgumentNullException(nameof(output)));

    /// <summary>True when the display redraws in place (an interactive terminal).</summary>
    public bool IsLive => renderer != null;

    /// <summary>Reports that <paramref name="step"/> (1-based) finished with <paramref name="loss"/> and learning rate <paramref name="lr"/>.</summary>
    public void Update(long step, double loss, double lr)
    {
        lock (gate)
        {
            // The first step this display sees (step 1, or the step after a resumed checkpoint) carries start-up cost.
            if (step == 1 || firstStepAt == TimeSpan.Zero) (firstStepAt, firstStep) = (clock.Elapsed, step);
            latest = (step, loss, lr);
        }
        plain?.WriteLine(Describe());
    }

    /// <summary>The current status text: step, loss, lr, tokens/s (when known) and the estimated time left.</summary>
    public string Describe()
    {
        (long step, double loss, double lr) = latest;
        TimeSpan now = clock.Elapsed, first = firstStepAt;
        // Speed from the steps after the first one seen (which carries start-up cost; after a resume it is not step 1);
        // that first step alone when it is all there is.
        double perStep = step > firstStep ? (now - first).TotalSeconds / (step - firstStep) : step >= 1 ? first.TotalSeconds : double.NaN;
        var ci = CultureInfo.InvariantCulture;
        string text = string.Create(ci, $"step {step}/{totalSteps} loss {loss:F6} lr {lr:G6}");
        if (tokensPerStep > 0 && perStep > 0) text += string.Create(ci, $" tokens/s {tokensPerStep / perStep:F0}");
        if (perStep > 0 && step <= totalSteps) text += " ETA " + TimeSpan.FromSeconds(Math.Round(perStep * (totalSteps - step))).ToString(@"h\:mm\:ss", ci);
        return text;
    }

    private void Render(IAnsiConsole console)
    {
        console.Progress().AutoClear(false).Columns(new ProgressBarColumn(), new PercentageColumn(), new TaskDescriptionColumn { Alignment = Justify.Left })
            .Start(ctx =>
            {
                var task = ctx.AddTask("starting", maxValue: Math.Max(1, totalSteps));
                do
                {
                    task.Value = latest.Step;
                    task.Description = Markup.Escape(Describe());
                    ctx.Refresh();
                } while (!stop.Wait(200));
                task.Value = latest.Step;
                task.Description = Markup.Escape(Describe());
                task.StopTask();
                ctx.Refresh();
            });
    }

    /// <summary>Stops the live view (leaving its last state on screen).</summary>
    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        stop.Set();
        renderer?.Join();
        stop.Dispose();
    }
}
