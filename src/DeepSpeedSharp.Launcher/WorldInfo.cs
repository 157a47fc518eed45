using System.Text;
using System.Text.Json;

namespace DeepSpeedSharp.Launcher;

/// <summary>
/// The hosts of a job, in order, each with the slots (device ids) it runs ranks on: DeepSpeed's
/// <c>world_info</c> dictionary. Ranks are numbered host by host in this order, slot by slot.
/// </summary>
public sealed class WorldInfo
{
    private readonly List<KeyValuePair<string, IReadOnlyList<int>>> _hosts;

    /// <summary>Creates the world from (host, slots) pairs in rank order.</summary>
    public WorldInfo(IEnumerable<KeyValuePair<string, IReadOnlyList<int>>> hosts)
    {
        _hosts = hosts.Select(h => new KeyValuePair<string, IReadOnlyList<int>>(h.Key, h.Value.ToArray())).ToList();
        var duplicate = _hosts.GroupBy(h => h.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate != null) throw new ArgumentException($"world info names host '{duplicate.Key}' twice.");
    }

    /// <summary>The host names in rank order.</summary>
    public IReadOnlyList<string> Hosts => _hosts.Select(h => h.Key).ToList();

    /// <summary>Number of hosts (DeepSpeed's <c>CROSS_SIZE</c>).</summary>
    public int NodeCount => _hosts.Count;

    /// <summary>Total number of ranks (<c>WORLD_SIZE</c>).</summary>
    public int WorldSize => _hosts.Sum(h => h.Value.Count);

    /// <summary>The slots used on <paramref name="host"/>.</summary>
    public IReadOnlyList<int> SlotsOf(string host) =>
        _hosts.FirstOrDefault(h => h.Key == host).Value ?? throw new ArgumentException($"host '{host}' is not in the world ({string.Join(", ", Hosts)}).");

    /// <summary>The slots of the node with index <paramref name="nodeRank"/>.</summary>
    public IReadOnlyList<int> SlotsOf(int nodeRank) => _hosts[CheckNode(nodeRank)].Value;

    /// <summary>The global ranks that run on node <paramref name="nodeRank"/>, in local-rank order.</summary>
    public IReadOnlyList<int> GlobalRanksOf(int nodeRank)
    {
        CheckNode(nodeRank);
        int first = _hosts.Take(nodeRank).Sum(h => h.Value.Count);
        return Enumerable.Range(first, _hosts[nodeRank].Value.Count).ToList();
    }

    /// <summary>The (node rank, local rank) that global rank <paramref name="rank"/> has.</summary>
    public (int NodeRank, int LocalRank) Locate(int rank)
    {
        if (rank < 0 || rank >= WorldSize) throw new ArgumentOutOfRangeException(nameof(rank), $"rank {rank} is outside the world of {WorldSize} ranks.");
        int node = 0;
        while (rank >= _hosts[node].Value.Count) { rank -= _hosts[node].Value.Count; node++; }
        return (node, rank);
    }

    /// <summary>The first <paramref name="count"/> hosts (DeepSpeed's <c>--num_nodes</c>).</summary>
    public WorldInfo FirstNodes(int count) => new(_hosts.Take(count));

    /// <summary>The world without <paramref name="hosts"/> (the hosts a restart leaves out).</summary>
    public WorldInfo Without(IReadOnlyCollection<string> hosts) => new(_hosts.Where(h => !hosts.Contains(h.Key)));

    /// <summary>Every host with slots <c>[0, count)</c> (DeepSpeed's <c>--num_gpus</c>).</summary>
    public WorldInfo WithSlotsPerNode(int count) =>
        new(_hosts.Select(h => new KeyValuePair<string, IReadOnlyList<int>>(h.Key, Enumerable.Range(0, count).ToArray())));

    /// <summary>The JSON object <c>{"host": [slots...]}</c> DeepSpeed passes around.</summary>
    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            foreach (var (host, slots) in _hosts)
            {
                w.WriteStartArray(host);
                foreach (var s in slots) w.WriteNumberValue(s);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>URL-safe base64 of <see cref="ToJson"/>, as DeepSpeed's <c>encode_world_info</c>.</summary>
    public string Encode() => Convert.ToBase64String(Encoding.UTF8.GetBytes(ToJson())).Replace('+', '-').Replace('/', '_');

    /// <summary>Reads what <see cref="Encode"/> wrote (also DeepSpeed's own <c>--world_info</c> values).</summary>
    public static WorldInfo Decode(string base64)
    {
        string json;
        try
        {
            json = Encoding.UTF8.GetString(Convert.FromBase64String(base64.Replace('-', '+').Replace('_', '/')));
        }
        catch (FormatException)
        {
            throw new ArgumentException($"--world_info '{base64}' is not URL-safe base64.");
        }
        return FromJson(json);
    }

    /// <summary>Parses <c>{"host": [slots...]}</c>.</summary>
    public static WorldInfo FromJson(string json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ArgumentException("world info must be a JSON object {\"host\": [slots]}.");
            var hosts = new List<KeyValuePair<string, IReadOnlyList<int>>>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Array)
                    throw new ArgumentException($"world info host '{p.Name}' must map to a list of slot numbers, got {p.Value.ValueKind}.");
                hosts.Add(new(p.Name, p.Value.EnumerateArray().Select(e => e.GetInt32()).ToArray()));
            }
            return new WorldInfo(hosts);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"world info is not valid JSON: {e.Message}");
        }
    }

    /// <inheritdoc />
    public override string ToString() => ToJson();

    private int CheckNode(int nodeRank)
    {
        if (nodeRank < 0 || nodeRank >= _hosts.Count)
            throw new ArgumentOutOfRangeException(nameof(nodeRank), $"node rank {nodeRank} is outside [0, {_hosts.Count}) for hosts {string.Join(", ", Hosts)}.");
        return nodeRank;
    }
}
