using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;

namespace DeepSpeedSharp.Comm.Shm;

/// <summary>
/// Names of a job's shared-memory files: <c>/dev/shm/dss-JOBID-GROUP-PID</c>. The job id is derived from the job
/// token, so the launcher, which generated the token, knows the names its ranks use and removes what a rank killed
/// during start-up left behind (<see cref="RemoveLeftovers"/>) when the job ends, however it ends.
/// </summary>
public static partial class ShmJobFiles
{
    [GeneratedRegex("^dss-[0-9a-f]{12}-[A-Za-z0-9-]+-[0-9]+$")]
    private static partial Regex OurName();

    /// <summary>Where the segments live.</summary>
    public const string Directory = "/dev/shm";

    /// <summary>The 12-hex-digit job id of a job token (hex, as DSS_JOB_TOKEN holds it): a one-way hash, not the secret.</summary>
    public static string JobIdOf(string tokenHex) => JobIdOf(Convert.FromHexString(tokenHex));

    /// <summary>The job id of a token given as bytes.</summary>
    public static string JobIdOf(byte[] token) =>
        Convert.ToHexStringLower(SHA256.HashData([.. Encoding.ASCII.GetBytes("dss-job-id:"), .. token]))[..12];

    /// <summary>The file of group <paramref name="group"/> of job <paramref name="jobId"/> created by this process.</summary>
    public static string PathFor(string jobId, string group) => $"{Directory}/dss-{jobId}-{group}-{Environment.ProcessId}";

    /// <summary>
    /// Removes the files of job <paramref name="jobId"/> in /dev/shm that this user owns and whose creator (the pid at
    /// the end of the name) <paramref name="isAlive"/> says is gone; returns the paths removed. Never throws: a file
    /// that cannot be removed is left (and not returned).
    /// </summary>
    public static IReadOnlyList<string> RemoveLeftovers(string jobId, Func<int, bool> isAlive) =>
        jobId.Length == 0 ? [] : Remove($"dss-{jobId}-*", isAlive, TimeSpan.Zero);

    /// <summary>
    /// Removes the files of any job in /dev/shm that this user owns, whose creator is gone and that are older than
    /// <paramref name="minimumAge"/>: what jobs whose launcher was killed with SIGKILL left (a launcher that dies normally
    /// removes its own with <see cref="RemoveLeftovers"/>). The age spares a segment whose creator runs in another pid
    /// namespace sharing /dev/shm, where its pid means nothing here.
    /// </summary>
    public static IReadOnlyList<string> RemoveStale(Func<int, bool> isAlive, TimeSpan minimumAge) =>
        Remove("dss-*", isAlive, minimumAge);

    private static List<string> Remove(string pattern, Func<int, bool> isAlive, TimeSpan minimumAge)
    {
        var removed = new List<string>();
        if (!System.IO.Directory.Exists(Directory)) return removed;
        try
        {
            foreach (var path in System.IO.Directory.EnumerateFiles(Directory, pattern))
            {
                var name = System.IO.Path.GetFileName(path);
                if (!OurName().IsMatch(name)) continue;
                if (!int.TryParse(name[(name.LastIndexOf('-') + 1)..], out int creator) || isAlive(creator)) continue;
                try
                {
                    if (DateTime.UtcNow - File.GetLastWriteTimeUtc(path) < minimumAge) continue;
                    using (var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete))
                        if (FileOwnership.OwnerOf(fs.SafeFileHandle) is { } uid && uid != FileOwnership.EffectiveUid) continue;
                    File.Delete(path);
                    removed.Add(path);
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return removed;
    }
}
