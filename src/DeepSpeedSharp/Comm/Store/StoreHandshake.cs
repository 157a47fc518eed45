using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace DeepSpeedSharp.Comm.Store;

/// <summary>
/// The rendezvous store's mutual challenge-response: the job token never crosses the wire. The client sends
/// "DSSSTORE2" and a 32-byte nonce; the server answers with its own nonce and HMAC-SHA256(token, "server" ‖ client
/// nonce ‖ server nonce); the client checks that proof (a listener without the token — another job's store, a
/// squatter on the port — learns nothing and is named in the error) and answers with HMAC-SHA256(token, "client" ‖
/// client nonce ‖ server nonce ‖ rank) and the rank it speaks for; the server replies OK or refuses. The connection is
/// then bound to that rank: the store refuses its heartbeats for another rank and its writes over another rank's keys.
/// </summary>
internal static class StoreHandshake
{
    public const int NonceBytes = 32;
    private const int MacBytes = 32;
    public static readonly byte[] Magic = "DSSSTORE2"u8.ToArray();
    private static readonly byte[] ServerLabel = "dss-store-server"u8.ToArray(), ClientLabel = "dss-store-client"u8.ToArray();

    /// <summary>The client's side; throws <see cref="UnauthorizedAccessException"/> naming <paramref name="where"/> when either side fails the check.</summary>
    public static void Client(Socket s, byte[] token, string where, int rank)
    {
        var clientNonce = RandomNumberGenerator.GetBytes(NonceBytes);
        StoreProtocol.WriteFrame(s, [.. Magic, .. clientNonce]);
        var reply = StoreProtocol.ReadFrame(s, StoreProtocol.MaxHelloFrame);
        if (reply.Length > 0 && reply[0] == StoreProtocol.Fail)
            throw new UnauthorizedAccessException($"the rendezvous store at {where} refused this rank: {Encoding.UTF8.GetString(reply.AsSpan(1))}.");
        if (reply.Length != 1 + NonceBytes + MacBytes || reply[0] != StoreProtocol.Ok)
            throw new UnauthorizedAccessException($"the process listening on {where} (MASTER_ADDR:MASTER_PORT) is not a DeepSpeedSharp rendezvous store (it did not answer the handshake): another program uses the port.");
        var serverNonce = reply.AsSpan(1, NonceBytes);
        if (!CryptographicOperations.FixedTimeEquals(reply.AsSpan(1 + NonceBytes), Mac(token, ServerLabel, clientNonce, serverNonce)))
            throw new UnauthorizedAccessException($"the rendezvous store at {where} (MASTER_ADDR:MASTER_PORT) is not this job's: it could not prove it holds the job token (another job uses the port?); this rank sent it no secret.");
        var rankBytes = BitConverter.GetBytes(rank);
        StoreProtocol.WriteFrame(s, [.. Mac(token, ClientLabel, clientNonce, serverNonce, rankBytes), .. rankBytes]);
        var verdict = StoreProtocol.ReadFrame(s, StoreProtocol.MaxHelloFrame);
        if (verdict.Length == 0 || verdict[0] != StoreProtocol.Ok)
            throw new UnauthorizedAccessException($"the rendezvous store at {where} refused this rank: {Encoding.UTF8.GetString(verdict.AsSpan(Math.Min(1, verdict.Length)))}.");
    }

    /// <summary>The server's side; returns false (after telling the client why) when the client is refused.</summary>
    /// <param name="s">The connection.</param>
    /// <param name="token">The job token.</param>
    /// <param name="rank">The rank the client proved it speaks for (-1 when refused).</param>
    /// <param name="claim">Called once the client proved the token, before the final OK: false (the connection's handshake time ran out meanwhile) refuses it.</param>
    public static bool Server(Socket s, byte[] token, out int rank, Func<bool>? claim = null)
    {
        rank = -1;
        var hello = StoreProtocol.ReadFrame(s, StoreProtocol.MaxHelloFrame);
        if (hello.Length != Magic.Length + NonceBytes || !hello.AsSpan(0, Magic.Length).SequenceEqual(Magic))
        {
            StoreProtocol.WriteFrame(s, [StoreProtocol.Fail, .. "refused: not a DeepSpeedSharp store handshake (DSSSTORE2 and a nonce)"u8]);
            return false;
        }
        var clientNonce = hello.AsSpan(Magic.Length);
        var serverNonce = RandomNumberGenerator.GetBytes(NonceBytes);
        StoreProtocol.WriteFrame(s, [StoreProtocol.Ok, .. serverNonce, .. Mac(token, ServerLabel, clientNonce, serverNonce)]);
        var proof = StoreProtocol.ReadFrame(s, StoreProtocol.MaxHelloFrame);
        var claimed = proof.AsSpan(Math.Min(MacBytes, proof.Length));
        if (proof.Length != MacBytes + 4 || BitConverter.ToInt32(claimed) < 0
            || !CryptographicOperations.FixedTimeEquals(proof.AsSpan(0, MacBytes), Mac(token, ClientLabel, clientNonce, serverNonce, claimed)))
        {
            StoreProtocol.WriteFrame(s, [StoreProtocol.Fail, .. "refused: wrong or missing job token (DSS_JOB_TOKEN)"u8]);
            return false;
        }
        if (claim != null && !claim()) return false;
        StoreProtocol.WriteFrame(s, [StoreProtocol.Ok]);
        rank = BitConverter.ToInt32(claimed);
        return true;
    }

    private static byte[] Mac(byte[] token, byte[] label, ReadOnlySpan<byte> clientNonce, ReadOnlySpan<byte> serverNonce, ReadOnlySpan<byte> rank = default)
    {
        byte[] message = [.. label, .. clientNonce, .. serverNonce, .. rank];
        return HMACSHA256.HashData(token, message);
    }
}
