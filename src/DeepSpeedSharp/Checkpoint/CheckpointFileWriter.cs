using System.Globalization;
using DeepSpeedSharp.IO;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Checkpoint;

/// <summary>
/// Writes one file of a checkpoint; when the write fails (a full disk, a quota, a read-only mount) the error says which
/// file, how many bytes it needed and how many were free on that file system.
/// </summary>
internal static class CheckpointFileWriter
{
    /// <summary>Writes <paramref name="tensors"/> to <paramref name="path"/> as safetensors.</summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var list = tensors.ToList();
        try
        {
            SafeTensors.Write(path, list, metadata);
        }
        catch (IOException e)
        {
            long needed = list.Sum(t => t.Value.numel() * t.Value.element_size());
            throw new IOException($"could not write checkpoint file '{Path.GetFileName(path)}' ({Mb(needed)} of tensors) in '{Path.GetDirectoryName(path)}': " +
                                  $"{e.Message.TrimEnd('.')}; {FreeSpace(path)}", e);
        }
    }

    /// <summary>"N MB free there", from the mount that holds <paramref name="path"/>, or a note that it is unknown.</summary>
    private static string FreeSpace(string path)
    {
        try
        {
            string full = Path.GetFullPath(path);
            var drive = DriveInfo.GetDrives().Where(d => d.IsReady && full.StartsWith(d.RootDirectory.FullName, StringComparison.Ordinal))
                .MaxBy(d => d.RootDirectory.FullName.Length);
            return drive == null ? "free space there unknown" : $"{Mb(drive.AvailableFreeSpace)} free there";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return "free space there unknown"; }
    }

    private static string Mb(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1e6:F1} MB");
}
