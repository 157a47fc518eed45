using System.Globalization;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// <c>--max_restarts N</c> and <c>--min_nodes M</c>: when a run of the job fails (a rank exits non-zero or dies, a host
/// is lost), the launcher has already stopped every rank; it then starts the job again, up to N times, with
/// <c>DSS_RESTART_COUNT</c> set to the restart's number so the program resumes from its latest checkpoint
/// (<c>DeepSpeed.RestartCount</c>). A host whose node launcher itself was lost (killed, or unreachable over ssh) is left
/// out of the restarted job while M or more hosts remain: the world shrinks and the checkpoint is resharded on load.
/// A job the user stopped (SIGINT/SIGTERM to the launcher) is never restarted. Every restart is reported with its cause.
/// </summary>
public static class JobRestarts
{
    private const string Tag = "[dss launch]";

    /// <summary>The variable that tells each rank which restart it belongs to (0: the first run).</summary>
    public const string RestartCountVariable = "DSS_RESTART_COUNT";

    /// <summary>The exports of run <paramref name="restart"/>: <paramref name="exports"/> and <see cref="RestartCountVariable"/>.</summary>
    public static Dictionary<string, string> WithCount(IReadOnlyDictionary<string, string> exports, int restart) =>
        new(exports, StringComparer.Ordinal) { [RestartCountVariable] = restart.ToString(CultureInfo.InvariantCulture) };

    /// <summary>
    /// Runs <paramref name="run"/> (restart number, world) until a run succeeds, the user stops it, or the restarts are
    /// used up; returns the last run's exit code.
    /// </summary>
    public static int Run(LaunchOptions o, WorldInfo world, Func<int, WorldInfo, JobOutcome> run, TextWriter stderr)
    {
        for (int restart = 0; ; restart++)
        {
            var outcome = run(restart, world);
            if (outcome.Code == 0)
            {
                if (restart > 0) stderr.WriteLine($"{Tag} the job finished after {restart} restart(s).");
                return 0;
            }
            if (outcome.Signalled) return outcome.Code;
            if (restart >= o.MaxRestarts)
            {
                if (o.MaxRestarts > 0) stderr.WriteLine($"{Tag} the job failed again (exit code {outcome.Code}) and its {o.MaxRestarts} restart(s) are used up; giving up.");
                return outcome.Code;
            }
            string where = "";
            if (outcome.LostHosts.Count > 0)
            {
                var lost = string.Join(",", outcome.LostHosts);
                var remaining = world.Without(outcome.LostHosts.ToHashSet());
                if (o.MinNodes > 0 && remaining.NodeCount >= o.MinNodes)
                {
                    world = remaining;
                    where = $" without host(s) {lost}, which were lost: {remaining.WorldSize} rank(s) on {remaining.NodeCount} host(s) {remaining.ToJson()}";
                }
                else
                    where = o.MinNodes > 0
                        ? $" on every host: host(s) {lost} were lost, but --min_nodes {o.MinNodes} needs them"
                        : $" on every host (host(s) {lost} were lost; --min_nodes would let a restart leave them out)";
            }
            var cause = outcome.FailedHost != null ? $"exit code {outcome.Code} on host {outcome.FailedHost}" : $"exit code {outcome.Code}";
            stderr.WriteLine($"{Tag} restart {restart + 1} of {o.MaxRestarts}: the job failed ({cause}); starting it again{where}; " +
                             $"ranks resume from their latest checkpoint ({RestartCountVariable}={restart + 1}).");
        }
    }
}
