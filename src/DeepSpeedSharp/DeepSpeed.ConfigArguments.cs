using System.CommandLine;
using DeepSpeedSharp.CommandLine;

namespace DeepSpeedSharp;

public static partial class DeepSpeed
{
    /// <summary>
    /// Adds DeepSpeed's command-line options to a trainer's System.CommandLine <paramref name="command"/>, as
    /// <c>deepspeed.add_config_arguments(parser)</c> does for argparse: <c>--deepspeed</c>, <c>--deepspeed_config FILE</c>
    /// and <c>--local_rank N</c> (what <c>dss launch</c> and DeepSpeed's launcher pass to every rank). Read them back with
    /// <see cref="DeepSpeedArguments.Read"/>; <see cref="TrainerCommandLine.Parse"/> parses with one-line errors.
    /// </summary>
    /// <example><code>
    /// var root = new RootCommand("my trainer");
    /// var steps = TrainerOptions.Int("--steps", "optimizer steps", 100);
    /// root.Options.Add(steps);
    /// var ds = DeepSpeed.AddConfigArguments(root);
    /// var parsed = TrainerCommandLine.Parse(root, args);
    /// var engine = DeepSpeed.Initialize(model, config: ds.Read(parsed).DeepSpeedConfig).Engine;
    /// </code></example>
    public static DeepSpeedArguments AddConfigArguments(Command command) => new(command);
}
