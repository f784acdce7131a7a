using System.Collections.Concurrent;
using System.Net;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>A transport the application provides (TLS, TCP only, a message bus, an in-process
/// queue) instead of the library's own UDP and TCP sockets: set
/// <see cref="MemberlistDelegates.Transport"/>. It has the shape of hashicorp/memberlist's
/// Transport, adapted to what libmemberlist hands a host: the library keeps the timers,
/// framing, encryption and the protocol, and gives the transport whole datagrams and whole
/// stream messages, opaque bytes to deliver unchanged (<c>ml_transport</c> in the C header).
/// <para>Addresses are the "ip:port" strings the nodes advertise ("[v6]:port" for IPv6). What
/// a transport hands in through its <see cref="TransportSink"/> must carry the sender's
/// advertised address, not the source port of a connection: the library answers there.</para>
/// <para>Lifecycle: <c>Memberlist.Create</c> calls <see cref="FinalAdvertiseAddress"/> once,
/// creates the node, then calls <see cref="Start"/> with the sink.
/// <see cref="Memberlist.Shutdown"/> or <see cref="Memberlist.Dispose"/> stops the node first
/// and then calls <see cref="Shutdown"/>, once. One transport serves one memberlist. An
/// exception thrown by <see cref="FinalAdvertiseAddress"/> or <see cref="Start"/> makes
/// Create throw; one thrown by <see cref="SendPacket"/> or <see cref="Shutdown"/> is caught and
/// reported through <see cref="Memberlist.CallbackException"/>: none reaches native code.</para></summary>
public interface ITransport
{
    /// <summary>The address to advertise, given the config's
    /// <see cref="MemberlistConfig.AdvertiseAddress"/> ("" if unset) and
    /// <see cref="MemberlistConfig.AdvertisePort"/> (0 if unset). It must be a specific IP
    /// (not Any) and a port other than 0; it becomes the node's address.</summary>
    IPEndPoint FinalAdvertiseAddress(string advertiseAddress, int advertisePort);

    /// <summary>Starts delivering what the transport receives to <paramref name="sink"/>;
    /// called once, right after the node was created.</summary>
    void Start(TransportSink sink);

    /// <summary>Sends one datagram to <paramref name="to"/>. Called on a library thread,
    /// possibly several at once: it must not block (queue the bytes and return).
    /// <paramref name="packet"/> is borrowed for the call: copy what you keep. Returns false
    /// if the datagram was not taken (counted as a dropped send; datagrams are best effort).</summary>
    bool SendPacket(string to, ReadOnlySpan<byte> packet);

    /// <summary>Sends one stream message to <paramref name="to"/> and completes with the peer's
    /// reply: the bytes (empty for an empty reply), or null when the peer closed its stream
    /// without a reply. Fault with <see cref="TimeoutException"/> when
    /// <paramref name="timeout"/> (<see cref="MemberlistConfig.TcpTimeout"/>) passed, and with
    /// any other exception when the connection failed (both are how a transport says the
    /// network failed: they are handed to the library, not reported). Called on a thread-pool
    /// thread of the binding, so it may do blocking work before its first await. The library
    /// does not say whether the message expects a reply: wait for the peer's answer either
    /// way. <paramref name="message"/> is the transport's to keep.</summary>
    Task<byte[]?> SendStreamAsync(string to, byte[] message, TimeSpan timeout);

    /// <summary>Stops the transport: no more calls into the sink matter after this. Called
    /// once, after the node stopped.</summary>
    void Shutdown();
}

/// <summary>Where a transport hands in what it received: datagrams and whole stream messages
/// for one memberlist. Every method may be called from any thread, concurrently, never
/// blocks, and is harmless after the memberlist was shut down or disposed (it then refuses
/// the input and returns false).</summary>
public sealed unsafe class TransportSink
{
    private readonly TransportBinding _binding;

    internal TransportSink(TransportBinding binding) => _binding = binding;

    /// <summary>A datagram from <paramref name="from"/> (the sender's advertised "ip:port"),
    /// copied. False if the library refused it (too large, malformed address, shut down); a
    /// datagram may be lost, so a transport need not act on that.</summary>
    public bool DeliverPacket(string from, ReadOnlySpan<byte> packet)
    {
        ArgumentNullException.ThrowIfNull(from);
        return _binding.Inject(from, packet);
    }

    /// <summary>A whole stream message from <paramref name="from"/> (the sender's advertised
    /// "ip:port"), copied. <paramref name="reply"/> is called exactly once, on a thread-pool
    /// thread (so it may block on the network): with the library's answer to send back, or
    /// with null for no answer (close the peer's stream without one). That holds also when the
    /// message is refused (this returns false) or the memberlist closes first.</summary>
    public bool DeliverStream(string from, ReadOnlySpan<byte> message, Action<byte[]?> reply)
    {
        ArgumentNullException.ThrowIfNull(from);
        ArgumentNullException.ThrowIfNull(reply);
        return _binding.InjectStream(from, message, reply);
    }
}

/// <summary>The native side of an <see cref="ITransport"/>: the ml_transport's user_data (a
/// GCHandle to this) and the token bookkeeping. It lives until the memberlist's
/// user_data_free, which the library calls after the last transport callback
/// (<see cref="Free"/>); it holds the native handle, not the Memberlist, so a shut-down
/// Memberlist can still be collected.</summary>
internal sealed class TransportBinding
{
    public readonly ITransport Transport;
    private readonly TimeSpan _timeout;
    private readonly GCHandle _self;
    // The handle once the node exists; null if create failed (set by Free).
    private readonly TaskCompletionSource<MemberlistHandle?> _ready =
        new(TaskCreationOptions.RunContinuationsAsynchronously);
    private MemberlistHandle? _handle;
    // Inbound streams handed to the library, by our token, until stream_reply (or Free).
    private readonly ConcurrentDictionary<ulong, Action<byte[]?>> _inbound = new();
    private long _nextToken;
    private int _shutdown, _freed;

    /// <summary>Bindings whose GCHandle is not freed yet (checked by the tests).</summary>
    internal static int Live;

    /// <summary>Outgoing streams whose completion was handed to the library, or dropped once
    /// the memberlist was gone (checked by the tests).</summary>
    internal static int StreamsFinished;

    public TransportBinding(ITransport transport, TimeSpan timeout)
    {
        Transport = transport;
        _timeout = timeout > TimeSpan.Zero ? timeout : TimeSpan.FromSeconds(10);
        _self = GCHandle.Alloc(this);
        Interlocked.Increment(ref Live);
    }

    /// <summary>The ml_transport for ml_config_set_transport.</summary>
    public unsafe ml_transport Native() => new()
    {
        version = Interop.Native.ML_TRANSPORT_VERSION,
        user_data = (void*)GCHandle.ToIntPtr(_self),
        send_packet = &SendPacket,
        send_stream = &SendStream,
        stream_reply = &StreamReply,
    };

    /// <summary>The advertised "ip:port" the transport gives for the config's settings.</summary>
    public string Address(string advertiseAddress, int advertisePort)
    {
        var ep = Transport.FinalAdvertiseAddress(advertiseAddress, advertisePort)
            ?? throw new MemberlistException(Interop.Native.ML_E_INVALID, "ITransport.FinalAdvertiseAddress returned null");
        if (ep.Address.Equals(IPAddress.Any) || ep.Address.Equals(IPAddress.IPv6Any) || ep.Port == 0)
            throw new MemberlistException(Interop.Native.ML_E_INVALID,
                $"ITransport.FinalAdvertiseAddress must return a specific IP and a port, not {ep}");
        return ep.ToString();
    }

    /// <summary>The node exists: outgoing streams may complete, and the transport starts
    /// delivering. (If create fails, <see cref="Free"/> releases the waiting streams.)</summary>
    public void Started(MemberlistHandle handle)
    {
        Volatile.Write(ref _handle, handle);
        _ready.TrySetResult(handle);
        Transport.Start(new TransportSink(this));
    }

    /// <summary>Calls the transport's Shutdown once (after the node stopped).</summary>
    public void Shutdown()
    {
        if (Interlocked.Exchange(ref _shutdown, 1) != 0)
            return;
        try { Transport.Shutdown(); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    /// <summary>From user_data_free (no transport callback comes any more), or when create
    /// fails before the library took the transport: answers the inbound streams still waiting
    /// and frees the GCHandle.</summary>
    public void Free()
    {
        if (Interlocked.Exchange(ref _freed, 1) != 0)
            return;
        _ready.TrySetResult(null);
        foreach (var token in _inbound.Keys)
            if (_inbound.TryRemove(token, out var reply))
                Reply(reply, null);
        _self.Free();
        Interlocked.Decrement(ref Live);
    }

    /// <summary>Runs a call on the live native handle; false once it is disposed (or not yet
    /// created). The lease keeps destroy from running during the call.</summary>
    private unsafe bool Use(Func<IntPtr, int> call)
    {
        var h = Volatile.Read(ref _handle);
        if (h is null)
            return false;
        try
        {
            using var ml = h.Use();
            return call((IntPtr)ml.Ptr) == Interop.Native.ML_OK;
        }
        catch (ObjectDisposedException)
        {
            return false;
        }
    }

    public unsafe bool Inject(string from, ReadOnlySpan<byte> packet)
    {
        if (from.Contains('\0'))
            return false;
        fixed (byte* p = packet)
        {
            var (ptr, len) = ((IntPtr)p, (nuint)packet.Length);
            return Use(ml => Interop.Native.ml_memberlist_transport_packet((ml_memberlist*)ml, from, (byte*)ptr, len));
        }
    }

    public unsafe bool InjectStream(string from, ReadOnlySpan<byte> message, Action<byte[]?> reply)
    {
        ulong token = (ulong)Interlocked.Increment(ref _nextToken);
        _inbound[token] = reply;
        bool ok = false;
        if (!from.Contains('\0'))
            fixed (byte* p = message)
            {
                var (ptr, len) = ((IntPtr)p, (nuint)message.Length);
                ok = Use(ml => Interop.Native.ml_memberlist_transport_stream((ml_memberlist*)ml, from, token, (byte*)ptr, len));
            }
        // Refused: no stream_reply comes, so the peer's stream is closed here (unless Free
        // already answered it).
        if (!ok && _inbound.TryRemove(token, out var r))
            Reply(r, null);
        return ok;
    }

    /// <summary>Calls a stream's reply on the thread pool (never on a library thread).</summary>
    private static void Reply(Action<byte[]?> reply, byte[]? answer) =>
        ThreadPool.UnsafeQueueUserWorkItem(static s =>
        {
            try { s.reply(s.answer); }
            catch (Exception e) { Memberlist.Report(e); }
        }, (reply, answer), preferLocal: false);

    /// <summary>One outgoing stream: the transport's answer completes the token, once.</summary>
    private async Task RunStream(string to, ulong token, byte[] message)
    {
        int status = Interop.Native.ML_OK;
        byte[]? reply = null;
        try
        {
            var answer = await Transport.SendStreamAsync(to, message, _timeout)
                .WaitAsync(_timeout + TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            if (answer is null)
                status = Interop.Native.ML_E_REJECTED; // closed without a reply
            else
                reply = answer;
        }
        catch (TimeoutException) { status = Interop.Native.ML_E_TIMEOUT; }
        catch (Exception) { status = Interop.Native.ML_E_IO; } // the network failed
        try
        {
            if (await _ready.Task.ConfigureAwait(false) is not null)
                Complete(token, status, reply);
        }
        catch (Exception e) { Memberlist.Report(e); }
        Interlocked.Increment(ref StreamsFinished);
    }

    /// <summary>ml_memberlist_transport_stream_done. ML_E_NOT_FOUND (the library stopped
    /// waiting, or needed no reply) and a disposed memberlist are harmless.</summary>
    private unsafe void Complete(ulong token, int status, byte[]? reply)
    {
        fixed (byte* p = reply)
        {
            var (ptr, len) = ((IntPtr)p, (nuint)(reply?.Length ?? 0));
            Use(ml => Interop.Native.ml_memberlist_transport_stream_done((ml_memberlist*)ml, token, status, (byte*)ptr, len));
        }
    }

    private static unsafe TransportBinding Of(void* userData) =>
        (TransportBinding)GCHandle.FromIntPtr((IntPtr)userData).Target!;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe int SendPacket(void* userData, byte* to, byte* data, nuint len)
    {
        try
        {
            return Of(userData).Transport.SendPacket(Util.Utf8(to), new ReadOnlySpan<byte>(data, checked((int)len))) ? 0 : 1;
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
            return 1;
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe int SendStream(void* userData, byte* to, ulong token, byte* data, nuint len)
    {
        try
        {
            var b = Of(userData);
            var (addr, message) = (Util.Utf8(to), Util.Bytes(data, len));
            // Never on the library's thread: the transport may block before its first await.
            ThreadPool.UnsafeQueueUserWorkItem(static s => _ = s.b.RunStream(s.addr, s.token, s.message),
                (b, addr, token, message), preferLocal: false);
            return 0;
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
            return 1; // the stream fails at once; the token is not completed
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static unsafe void StreamReply(void* userData, ulong token, byte* reply, nuint len, uint hasReply)
    {
        try
        {
            var b = Of(userData);
            if (b._inbound.TryRemove(token, out var r))
                Reply(r, hasReply != 0 ? Util.Bytes(reply, len) : null);
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }
}
