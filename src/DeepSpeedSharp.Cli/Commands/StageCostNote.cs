using DeepSpeedSharp.Zero;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// <c>dss estimate</c>'s one-line note under a row where a higher ZeRO stage needs more per rank than a lower one:
/// it names the term that causes it (ZeRO-3's reduce-scatter buffers: the one term a higher stage adds that grows with
/// the model rather than shrinking with the ranks), the config key that sizes it with its value, and a smaller value
/// that makes the higher stage the cheaper one.
/// </summary>
internal static class StageCostNote
{
    /// <summary>Smaller <c>reduce_bucket_size</c> values tried for the suggestion, as divisors of the current one.</summary>
    private static readonly int[] Divisors = [10, 100, 1000];

    /// <summary>
    /// The note for <paramref name="higher"/> (the setup of the row just printed) against the cheapest lower stage with
    /// the same offload choice, or null when no lower stage needs less or the buckets do not explain it.
    /// </summary>
    public static string? For(ZeroMemorySetup higher, ZeroMemoryEstimate estimate, int lowerStage, ZeroMemoryEstimate lower)
    {
        if (estimate.Total <= lower.Total || higher.Stage <= lowerStage) return null;
        string compare = F($"note: stage {higher.Stage} needs more per rank than stage {lowerStage} here ({Gb(estimate.Total)} vs {Gb(lower.Total)})");
        if (higher.Stage == 3 && estimate.ReduceBuffers > 0)
        {
            string why = higher.Parameters <= higher.ReduceBucketSize
                ? F($"the whole model's gradients in one fp32 bucket, as its {higher.Parameters:N0} parameters fit in one")
                : "two fp32 buckets of half the bucket size each";
            string suggestion = "";
            foreach (int d in Divisors)
            {
                long smaller = higher.ReduceBucketSize / d;
                if (smaller < 1) break;
                var cheaper = ZeroMemoryEstimator.PerRank(higher with { ReduceBucketSize = smaller });
                if (cheaper.Total >= lower.Total) continue;
                suggestion = F($" (e.g. {smaller:N0} makes stage {higher.Stage} {Gb(cheaper.Total)} per rank)");
                break;
            }
            return compare + F($": ZeRO-3's reduce-scatter buffers take {Gb(estimate.ReduceBuffers)} ({why}); they are sized by ") +
                   F($"zero_optimization.reduce_bucket_size = {higher.ReduceBucketSize:N0}: lower it to shrink them{suggestion}.");
        }
        return null;
    }

    private static string Gb(long bytes) => EstimateCommand.Gb(bytes);

    private static string F(FormattableString s) => EstimateCommand.F(s);
}
