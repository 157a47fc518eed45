using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace DeepSpeedSharp.Comm.Core;

/// <summary>
/// Gives backends host pointers to tensors. Contiguous CPU tensors are used in place; others (non-contiguous,
/// or on another device) are copied through reused, grown-on-demand host buffers.
/// </summary>
internal sealed unsafe class StagingPool : IDisposable
{
    private readonly Tensor?[] _buffers = new Tensor?[4];

    public static bool IsDirect(Tensor t) => t.device_type == DeviceType.CPU && t.is_contiguous();

    /// <summary>Raw pointer to element 0 of a contiguous CPU tensor (null when empty).</summary>
    public static byte* PointerOf(Tensor t)
    {
        if (t.numel() == 0) return null;
        if (t.numel() * t.element_size() < int.MaxValue) return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
        using var flat = t.view(-1);
        using var first = flat.narrow(0, 0, 1);
        return (byte*)Unsafe.AsPointer(ref MemoryMarshal.GetReference(first.bytes));
    }

    /// <summary>A host view of <paramref name="t"/>; slot picks one of the reusable buffers.</summary>
    public HostBuffer Stage(Tensor t, int slot, bool copyIn)
    {
        long n = t.numel();
        if (IsDirect(t)) return new HostBuffer(PointerOf(t), n, t.dtype);
        var buf = _buffers[slot];
        if (buf is null || buf.dtype != t.dtype || buf.numel() < n)
        {
            buf?.Dispose();
            buf = torch.zeros(Math.Max(n, 64), t.dtype); // zeros: pages are touched once, then reused
            _buffers[slot] = buf;
        }
        var hb = new HostBuffer(PointerOf(buf), n, t.dtype);
        if (copyIn && n > 0)
        {
            using var _ = torch.no_grad();
            using var view = View(buf, t);
            view.copy_(t);
        }
        return hb;
    }

    /// <summary>Copies the staged result back into <paramref name="t"/> when it was staged.</summary>
    public void Unstage(Tensor t, int slot)
    {
        if (IsDirect(t) || t.numel() == 0) return;
        using var _ = torch.no_grad();
        using var view = View(_buffers[slot]!, t);
        t.copy_(view);
    }

    private static Tensor View(Tensor buf, Tensor like)
    {
        using var part = buf.narrow(0, 0, like.numel());
        return part.view(like.shape);
    }

    public void Dispose()
    {
        for (int i = 0; i < _buffers.Length; i++) { _buffers[i]?.Dispose(); _buffers[i] = null; }
    }
}
