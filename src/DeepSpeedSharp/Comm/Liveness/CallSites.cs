using System.Diagnostics;
using System.Reflection;

namespace DeepSpeedSharp.Comm.Liveness;

/// <summary>
/// Where the program called into communication: the first frame of the current stack outside this layer and the
/// runtime ("DeepSpeedSharp.Zero.Zero3Strategy.Gather (Zero3Strategy.cs:88)", or the user's method). Taken only for
/// waits that already blocked a while, so its cost never touches a step that runs normally.
/// </summary>
internal static class CallSites
{
    /// <summary>The calling frame of the current thread, or null when every frame is inside the library's communication layer.</summary>
    public static string? Here()
    {
        foreach (var frame in new StackTrace(1, fNeedFileInfo: true).GetFrames())
        {
            var method = frame.GetMethod();
            var type = method?.DeclaringType;
            if (method == null || type == null) continue;
            var ns = type.Namespace ?? "";
            if (ns.StartsWith("DeepSpeedSharp.Comm", StringComparison.Ordinal) || ns.StartsWith("System", StringComparison.Ordinal)) continue;
            var file = frame.GetFileName();
            return $"{TypeName(type)}.{MethodName(method)}" + (file != null ? $" ({Path.GetFileName(file)}:{frame.GetFileLineNumber()})" : "");
        }
        return null;
    }

    // Compiler-generated closures and state machines: name the type and method the programmer wrote.
    private static string TypeName(Type t)
    {
        while (t.Name.StartsWith('<') && t.DeclaringType != null) t = t.DeclaringType;
        return t.FullName?.Replace('+', '.') ?? t.Name;
    }

    private static string MethodName(MethodBase m) =>
        m.Name.StartsWith('<') && m.Name.IndexOf('>') is > 1 and var end ? m.Name[1..end] : m.Name;
}
