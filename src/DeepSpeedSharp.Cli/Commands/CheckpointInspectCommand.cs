using System.CommandLine;
using DeepSpeedSharp.Checkpoint;

namespace DeepSpeedSharp.Cli.Commands;

/// <summary>
/// `dss checkpoint inspect DIR [--tag T]` prints tags, world size, stage, dtypes and sizes, and verifies every checksum
/// (exit 1 on a problem), through <see cref="CheckpointInspector"/>.
/// </summary>
public sealed class CheckpointInspectCommand : CliCommand
{
    /// <inheritdoc />
    public override string Name => "checkpoint inspect";

    /// <inheritdoc />
    public override string Summary => "DIR [--tag T]: tags, world size, stage, sizes; verify every checksum";

    /// <inheritdoc />
    public override Command CreateCommand()
    {
        var dir = CliOptions.CheckpointDirectory();
        var tag = CliOptions.Text("--tag", "TAG", "inspect only this tag (default: every tag)");
        var command = new Command("inspect", "Print a checkpoint's tags, world size, ZeRO stage, dtypes and sizes, and verify every file's checksum " +
                                             "(exit 1 when one does not match or a file is missing).")
        {
            dir, tag,
        };
        command.SetAction(r =>
        {
            r.InvocationConfiguration.Output.Write(CheckpointInspector.Inspect(r.GetValue(dir)!, r.GetValue(tag), out bool ok));
            return ok ? 0 : 1;
        });
        return command;
    }
}
