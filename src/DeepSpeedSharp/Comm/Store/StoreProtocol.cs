using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>
/// Length-prefixed frames of the rendezvous store: a 4-byte little-endian length then the payload. Every length
/// is checked against a bound before anything is allocated.
/// </summary>
internal static class StoreProtocol
{
    public const int MaxFrame = 1 << 20;          // 1 MiB: store values are addresses and names
    public const int MaxHelloFrame = 256;         // before authentication
    public const int MaxKey = 512;

    public const byte Set = 1, Get = 2, Add = 3, Beat = 4, Status = 5;
    /// <summary>Longest status text a heartbeat carries.</summary>
    public const int MaxStatus = 8192;
    public const byte Ok = 1, Fail = 0;

    public static void WriteFrame(Socket s, ReadOnlySpan<byte> payload)
    {
        Span<byte> len = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(len, payload.Length);
        SendAll(s, len);
        SendAll(s, payload);
    }

    public static byte[] ReadFrame(Socket s, int maxLength)
    {
        Span<byte> len = stackalloc byte[4];
        ReceiveAll(s, len);
        int n = BinaryPrimitives.ReadInt32LittleEndian(len);
        if (n < 0 || n > maxLength) throw new InvalidDataException($"store frame of {n} bytes exceeds the limit of {maxLength} bytes.");
        var buf = new byte[n];
        ReceiveAll(s, buf);
        return buf;
    }

    public static void SendAll(Socket s, ReadOnlySpan<byte> data)
    {
        while (data.Length > 0) data = data[s.Send(data)..];
    }

    public static void ReceiveAll(Socket s, Span<byte> data)
    {
        while (data.Length > 0)
        {
            int n = s.Receive(data);
            if (n == 0) throw new EndOfStreamException("the store connection was closed.");
            data = data[n..];
        }
    }

    /// <summary>cmd, key length (u16), key, rest.</summary>
    public static byte[] Request(byte cmd, string key, ReadOnlySpan<byte> rest)
    {
        var k = Encoding.UTF8.GetBytes(key);
        if (k.Length > MaxKey) throw new ArgumentException($"store key '{key}' is longer than {MaxKey} bytes.");
        if (rest.Length + k.Length + 3 > MaxFrame) throw new ArgumentException($"store value for '{key}' is larger than {MaxFrame} bytes.");
        var buf = new byte[3 + k.Length + rest.Length];
        buf[0] = cmd;
        BinaryPrimitives.WriteUInt16LittleEndian(buf.AsSpan(1), (ushort)k.Length);
        k.CopyTo(buf, 3);
        rest.CopyTo(buf.AsSpan(3 + k.Length));
        return buf;
    }

    public static (byte Cmd, string Key, ReadOnlyMemory<byte> Body) Parse(byte[] frame)
    {
        if (frame.Length < 3) throw new InvalidDataException("store request too short.");
        int kl = BinaryPrimitives.ReadUInt16LittleEndian(frame.AsSpan(1));
        if (kl > MaxKey || 3 + kl > frame.Length) throw new InvalidDataException($"store key length {kl} is invalid.");
        return (frame[0], Encoding.UTF8.GetString(frame, 3, kl), frame.AsMemory(3 + kl));
    }
}
