using System.CommandLine;

namespace DeepSpeedSharp.CommandLine;

/// <summary>
/// The options DeepSpeed's <c>deepspeed.add_config_arguments(parser)</c> adds to a trainer's command line, as
/// System.CommandLine options on the trainer's command (see <see cref="DeepSpeed.AddConfigArguments"/>):
/// <c>--deepspeed</c>, <c>--deepspeed_config FILE</c> (DeepSpeed's deprecated <c>--deepscale</c> and
/// <c>--deepscale_config</c> are aliases) and <c>--local_rank N</c>, which launchers (<c>dss launch</c>, <c>deepspeed</c>,
/// <c>torch.distributed.launch</c>) pass as <c>--local_rank=N</c>.
/// </summary>
public sealed class DeepSpeedArguments
{
    internal DeepSpeedArguments(Command command)
    {
        ArgumentNullException.ThrowIfNull(command);
        Enabled = TrainerOptions.Flag("--deepspeed", "Enable DeepSpeed (a marker the launchers and recipes pass; the engine is always on)", "--deepscale");
        Config = TrainerOptions.Text("--deepspeed_config", "FILE", "The DeepSpeed JSON config", "--deepscale_config");
        Config.Validators.Add(r =>
        {
            if (r.Tokens.Count == 1 && r.Tokens[0].Value is { Length: > 0 } path && !File.Exists(path))
                r.AddError($"--deepspeed_config: no such file '{path}'");
        });
        LocalRank = TrainerOptions.OptionalInt("--local_rank", "This process's rank on its host (passed by launchers; the environment says the same)", min: 0);
        foreach (var option in new Option[] { Enabled, Config, LocalRank })
        {
            if (command.Options.Any(o => o.Name == option.Name))
                throw new ArgumentException($"the command '{command.Name}' already has an option {option.Name}: DeepSpeed's arguments are added once", nameof(command));
            command.Options.Add(option);
        }
    }

    /// <summary><c>--deepspeed</c>.</summary>
    public Option<bool> Enabled { get; }

    /// <summary><c>--deepspeed_config FILE</c> (must exist).</summary>
    public Option<string?> Config { get; }

    /// <summary><c>--local_rank N</c>.</summary>
    public Option<int?> LocalRank { get; }

    /// <summary>The values of a parsed command line.</summary>
    public DeepSpeedArgumentValues Read(ParseResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        return new DeepSpeedArgumentValues(result.GetValue(Enabled), result.GetValue(Config), result.GetValue(LocalRank));
    }
}

/// <summary>DeepSpeed's arguments as given on a trainer's command line (DeepSpeed's <c>args.deepspeed</c>,
/// <c>args.deepspeed_config</c>, <c>args.local_rank</c>).</summary>
/// <param name="DeepSpeed"><c>--deepspeed</c> was given.</param>
/// <param name="DeepSpeedConfig">The <c>--deepspeed_config</c> file, or null.</param>
/// <param name="LocalRank">The <c>--local_rank</c>, or null.</param>
public sealed record DeepSpeedArgumentValues(bool DeepSpeed, string? DeepSpeedConfig, int? LocalRank);
