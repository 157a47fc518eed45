using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using DeepSpeedSharp.Config;
using DeepSpeedSharp.Engine;
using DeepSpeedSharp.Monitoring;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Tests.Monitoring;

public class MonitorTests
{
    /// <summary>Trains a tiny model for <paramref name="steps"/> steps (micro-batch 4, SGD lr 0.1) and returns the per-step losses.</summary>
    internal static (DeepSpeedEngine Engine, List<double> Losses) Train(string extraConfig, int steps)
    {
        torch.manual_seed(11);
        var model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3));
        var engine = DeepSpeed.Initialize(model, config:
            $"{{\"train_micro_batch_size_per_gpu\": 4, \"optimizer\": {{\"type\": \"sgd\", \"params\": {{\"lr\": 0.1}}}}, {extraConfig}}}").Engine;
        var g = new Generator(5);
        var losses = new List<double>();
        for (int s = 0; s < steps; s++)
        {
            using var scope = NewDisposeScope();
            var loss = nn.functional.mse_loss(engine.Forward(randn(4, 6, generator: g)).to(ScalarType.Float32), randn(4, 3, generator: g));
            losses.Add(loss.to(ScalarType.Float64).item<double>());
            engine.Backward(loss);
            engine.Step();
        }
        return (engine, losses);
    }

    private static string TempDir() => Directory.CreateTempSubdirectory("dss-monitor").FullName;

    private static string Config(string key, string dir, string job = "job") =>
        $"\"{key}\": {{\"enabled\": true, \"output_path\": \"{dir}\", \"job_name\": \"{job}\"}}";

    [Fact]
    public void CsvMonitorWritesOneFilePerEventWithDeepSpeedNamesAfterAShortRun()
    {
        var dir = TempDir();
        var (_, losses) = Train(Config("csv_monitor", dir) + ", \"wall_clock_breakdown\": true, \"steps_per_print\": 2", steps: 4);
        var job = Path.Combine(dir, "job");
        string[] Lines(string name) => File.ReadAllLines(Path.Combine(job, name));

        var loss = Lines("Train_Samples_train_loss.csv");
        Assert.Equal("step,train_loss", loss[0]);
        Assert.Equal(5, loss.Length);
        for (int i = 0; i < 4; i++)
        {
            var cells = loss[i + 1].Split(',');
            Assert.Equal((4 * i).ToString(CultureInfo.InvariantCulture), cells[0]); // samples before the step, as DeepSpeed
            Assert.Equal(losses[i], double.Parse(cells[1], CultureInfo.InvariantCulture), 12);
        }
        Assert.Equal(new[] { "step,lr", "4,0.1", "8,0.1", "12,0.1", "16,0.1" }, Lines("Train_Samples_lr.csv"));
        foreach (var timer in new[] { "forward", "backward", "backward_inner", "backward_allreduce", "step" })
        {
            var rows = Lines($"Train_Samples_elapsed_time_ms_{timer}.csv");
            Assert.Equal($"step,elapsed_time_ms_{timer}", rows[0]);
            Assert.Equal(new[] { "8", "16" }, rows.Skip(1).Select(r => r.Split(',')[0])); // every steps_per_print = 2 steps
            Assert.All(rows.Skip(1), r => Assert.True(double.Parse(r.Split(',')[1], CultureInfo.InvariantCulture) >= 0));
        }
        Assert.True(double.Parse(Lines("Train_Samples_elapsed_time_ms_forward.csv")[1].Split(',')[1], CultureInfo.InvariantCulture) > 0);
    }

    [Fact]
    public void Fp16RunsWriteTheLossScale()
    {
        var dir = TempDir();
        Train(Config("csv_monitor", dir) + ", \"fp16\": {\"enabled\": true, \"loss_scale\": 64}", steps: 2);
        Assert.Equal(new[] { "step,loss_scale", "4,64", "8,64" }, File.ReadAllLines(Path.Combine(dir, "job", "Train_Samples_loss_scale.csv")));
    }

    [Fact]
    public void MonitorsAreCreatedOnlyOnRankZero()
    {
        var dir = TempDir();
        var cfg = DeepSpeedConfig.FromJson($"{{{Config("csv_monitor", dir)}, {Config("tensorboard", dir, "tb")}}}");
        Assert.False(MonitorMaster.FromConfig(cfg, 1).Enabled);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
        var master = MonitorMaster.FromConfig(cfg, 0);
        Assert.Equal(new[] { "tensorboard", "csv_monitor" }, master.Monitors.Select(m => m.Kind));
        Assert.False(MonitorMaster.FromConfig(DeepSpeedConfig.FromJson("{}"), 0).Enabled);
    }

    [Fact]
    public void Crc32cMatchesTheStandardCheckValue()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute(Encoding.ASCII.GetBytes("123456789")));
        Assert.Equal(0xE3069283u, BitwiseCrc32C(Encoding.ASCII.GetBytes("123456789")));
    }

    [Fact]
    public void TensorBoardEventFileReadsBackWithFramingAndCrcsChecked()
    {
        var dir = TempDir();
        var (engine, losses) = Train(Config("tensorboard", dir, "tb"), steps: 3);
        var file = Assert.Single(Directory.GetFiles(Path.Combine(dir, "tb")));
        Assert.Contains("events.out.tfevents.", Path.GetFileName(file));

        // Framing checked by hand with an independent (bit-by-bit) CRC-32C: length, masked CRC of the length, data, masked CRC of the data.
        var bytes = File.ReadAllBytes(file);
        var records = new List<byte[]>();
        for (int at = 0; at < bytes.Length;)
        {
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at));
            Assert.Equal(Mask(BitwiseCrc32C(bytes.AsSpan(at, 8))), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            var data = bytes.AsSpan(at + 12, (int)length);
            Assert.Equal(Mask(BitwiseCrc32C(data)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + (int)length)));
            records.Add(data.ToArray());
            at += 16 + (int)length;
        }
        var first = Tensorboard.Event.Parser.ParseFrom(records[0]);
        Assert.Equal("brain.Event:2", first.FileVersion);
        Assert.InRange(first.WallTime, DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 600, DateTimeOffset.UtcNow.ToUnixTimeSeconds() + 5);
        Assert.Equal(1 + 2 * 3, records.Count); // file version, then train_loss and lr per step

        var scalars = TensorBoardMonitor.ReadScalars(file);
        var lossEvents = scalars.Where(s => s.Tag == "Train/Samples/train_loss").ToList();
        Assert.Equal(new long[] { 0, 4, 8 }, lossEvents.Select(s => s.Step));
        for (int i = 0; i < 3; i++) Assert.Equal((float)losses[i], lossEvents[i].Value);
        Assert.Equal(new long[] { 4, 8, 12 }, scalars.Where(s => s.Tag == "Train/Samples/lr").Select(s => s.Step));
        Assert.All(scalars.Where(s => s.Tag == "Train/Samples/lr"), s => Assert.Equal(0.1f, s.Value));
        Assert.Equal(3, engine.GlobalSteps);
    }

    [Fact]
    public void CorruptedEventFileIsRejectedNamingTheRecord()
    {
        var dir = TempDir();
        var tb = new TensorBoardMonitor(dir, "tb");
        tb.WriteEvents([new MonitorEvent("Train/Samples/lr", 0.5, 8)]);
        var bytes = File.ReadAllBytes(tb.FilePath);
        bytes[^6] ^= 0x40; // inside the second record's data
        File.WriteAllBytes(tb.FilePath, bytes);
        var e = Assert.Throws<InvalidDataException>(() => TfRecordFile.ReadRecords(tb.FilePath));
        Assert.Contains("record 1", e.Message);
        Assert.Contains("data CRC mismatch", e.Message);
    }

    /// <summary>CRC-32C computed bit by bit (no table), independent of the library's implementation.</summary>
    private static uint BitwiseCrc32C(ReadOnlySpan<byte> data)
    {
        uint crc = ~0u;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0x82F63B78u & (uint)-(int)(crc & 1));
        }
        return ~crc;
    }

    private static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
