using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.IO;

/// <summary>Loads and saves a module's parameters as a safetensors file under the module's own parameter names.</summary>
public static class ModuleWeights
{
    /// <summary>
    /// Copies every parameter of <paramref name="module"/> from the file (any float dtype is converted to the
    /// parameter's dtype). A missing or mis-shaped tensor is an error naming it; nothing is changed unless every
    /// tensor fits. Tensors in the file that the module lacks are an error too unless <paramref name="strict"/> is false.
    /// </summary>
    public static void Load(nn.Module module, string path, bool strict = true)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"weights file '{path}' does not exist", path);
        var tensors = SafeTensors.Read(path);
        try
        {
            var parameters = module.named_parameters().ToList();
            var problems = new List<string>();
            foreach (var (name, p) in parameters)
            {
                if (!tensors.TryGetValue(name, out var t)) problems.Add($"missing tensor '{name}'");
                else if (!t.shape.SequenceEqual(p.shape))
                    problems.Add($"tensor '{name}' has shape [{string.Join(", ", t.shape)}], the model needs [{string.Join(", ", p.shape)}]");
                else if (!t.is_floating_point()) problems.Add($"tensor '{name}' has dtype {t.dtype}; a floating-point dtype is needed");
            }
            if (strict)
            {
                var known = parameters.Select(p => p.name).ToHashSet();
                problems.AddRange(tensors.Keys.Where(k => !known.Contains(k)).Order().Select(k => $"unexpected tensor '{k}' (the model has no such parameter)"));
            }
            if (problems.Count > 0)
                throw new InvalidDataException($"weights file '{path}' does not fit the model: {string.Join("; ", problems)}");
            using var noGrad = no_grad();
            foreach (var (name, p) in parameters) p.copy_(tensors[name]);
        }
        finally
        {
            foreach (var t in tensors.Values) t.Dispose();
        }
    }

    /// <summary>Writes every parameter (optionally converted to <paramref name="dtype"/>) to a safetensors file.</summary>
    public static void Save(nn.Module module, string path, ScalarType? dtype = null)
    {
        var converted = module.named_parameters()
            .Select(kv => new KeyValuePair<string, Tensor>(kv.name, dtype is { } d ? kv.parameter.detach().to(d) : kv.parameter.detach()))
            .ToList();
        try
        {
            SafeTensors.Write(path, converted);
        }
        finally
        {
            foreach (var kv in converted) kv.Value.Dispose();
        }
    }
}
