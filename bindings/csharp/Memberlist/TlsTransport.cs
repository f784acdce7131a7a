using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Threading.Channels;

namespace LibMemberlist;

/// <summary>Settings of a <see cref="TlsTransport"/>.</summary>
public sealed class TlsTransportOptions
{
    /// <summary>This node's certificate, with its private key: the server certificate of the
    /// connections it accepts and, with <see cref="MutualAuthentication"/>, the client
    /// certificate of those it opens.</summary>
    public required X509Certificate2 Certificate { get; init; }

    /// <summary>Where to listen (default 127.0.0.1, a port the system picks).</summary>
    public IPEndPoint BindEndPoint { get; init; } = new(IPAddress.Loopback, 0);

    /// <summary>True (the default): both ends present a certificate and check the other's.
    /// False: only the accepting end presents one (server-only authentication).</summary>
    public bool MutualAuthentication { get; init; } = true;

    /// <summary>Checks the peer's certificate (see <see cref="TlsTransport.PinThumbprint"/>).
    /// Null: the system's validation (a trusted chain and, on the dialing end, the name
    /// <see cref="TargetHost"/>).</summary>
    public RemoteCertificateValidationCallback? ValidateRemoteCertificate { get; init; }

    /// <summary>The server name the dialing end asks for and checks (default: the peer's IP).</summary>
    public string? TargetHost { get; init; }

    /// <summary>Bound on a TLS handshake and on writing a stream's answer (default 10 s).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);
}

/// <summary>An example <see cref="ITransport"/> that carries everything over TCP inside TLS
/// (<see cref="SslStream"/>), with no UDP at all: for networks that block UDP, or that want
/// peers authenticated by certificate. Datagrams to a peer go over one long-lived connection
/// per peer, in order, and are dropped when its queue is full or the peer cannot be reached
/// (datagrams are best effort). Each stream message gets a connection of its own: the message
/// goes out, the reply (or a "no reply" mark) comes back.
/// <para>On the wire (the same as the Go binding's TCPTransport) every message is a frame: a
/// kind byte ('P' datagram, 'S' stream), the sender's advertised address (a length byte, then
/// "ip:port"), a 4-byte big-endian length and the bytes. A stream's answer is a byte (1 reply,
/// 0 none), then with a reply its 4-byte length and bytes. The library's bytes are already
/// framed and, with a keyring, encrypted: TLS adds transport security and peer authentication
/// on top.</para>
/// <para>The listener is bound by the constructor (<see cref="LocalEndPoint"/>) and accepts
/// once the memberlist starts the transport. <see cref="Shutdown"/> (called by the memberlist,
/// or <see cref="Dispose"/>) closes every connection and waits for the transport's tasks.</para></summary>
public sealed class TlsTransport : ITransport, IDisposable
{
    private const int MaxFrame = 64 << 20; // largest message accepted from a peer
    private const int PeerQueue = 256;     // datagrams queued per peer before they are dropped
    private static readonly TimeSpan PacketTimeout = TimeSpan.FromSeconds(2);

    private readonly TlsTransportOptions _options;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private readonly object _lock = new();
    private readonly Dictionary<string, Channel<byte[]>> _peers = new();
    private readonly ConcurrentDictionary<Stream, byte> _open = new();
    private readonly ConcurrentDictionary<Task, byte> _tasks = new();
    private TransportSink? _sink;
    private string? _advertise;
    private bool _closed;

    /// <summary>Binds the listener (<see cref="TlsTransportOptions.BindEndPoint"/>).</summary>
    public TlsTransport(TlsTransportOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(options.Certificate);
        if (!options.Certificate.HasPrivateKey)
            throw new ArgumentException("the certificate has no private key", nameof(options));
        _options = options;
        _listener = new Socket(options.BindEndPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            _listener.Bind(options.BindEndPoint);
            _listener.Listen(128);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    /// <summary>The address the transport listens on.</summary>
    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    /// <summary>A validation callback that accepts exactly the certificate whose SHA-256 hash
    /// is <paramref name="sha256Thumbprint"/> (hex, as
    /// <c>cert.GetCertHashString(HashAlgorithmName.SHA256)</c>), whatever its chain or name:
    /// for self-signed certificates shared out of band.</summary>
    public static RemoteCertificateValidationCallback PinThumbprint(string sha256Thumbprint)
    {
        ArgumentNullException.ThrowIfNull(sha256Thumbprint);
        return (_, cert, _, _) => cert is not null &&
            string.Equals(cert.GetCertHashString(HashAlgorithmName.SHA256), sha256Thumbprint, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>Advertises <paramref name="advertiseAddress"/> (or the listener's IP) and
    /// <paramref name="advertisePort"/> (or the listener's port).</summary>
    public IPEndPoint FinalAdvertiseAddress(string advertiseAddress, int advertisePort)
    {
        var ip = LocalEndPoint.Address;
        if (!string.IsNullOrEmpty(advertiseAddress) && !IPAddress.TryParse(advertiseAddress, out ip))
            throw new ArgumentException($"advertise address \"{advertiseAddress}\" is not an IP", nameof(advertiseAddress));
        if (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any))
            throw new InvalidOperationException("the transport listens on all addresses: set an advertise address");
        var ep = new IPEndPoint(ip, advertisePort != 0 ? advertisePort : LocalEndPoint.Port);
        lock (_lock)
            _advertise = ep.ToString();
        return ep;
    }

    /// <summary>Starts accepting connections; what they carry goes to <paramref name="sink"/>.</summary>
    public void Start(TransportSink sink)
    {
        ArgumentNullException.ThrowIfNull(sink);
        lock (_lock)
        {
            if (_sink is not null)
                throw new InvalidOperationException("the transport is already started");
            ObjectDisposedException.ThrowIf(_closed, this);
            _sink = sink;
        }
        Track(AcceptLoop());
    }

    /// <summary>Queues the datagram on the peer's connection and returns at once; false after
    /// Shutdown, for a malformed address or when the peer's queue is full.</summary>
    public bool SendPacket(string to, ReadOnlySpan<byte> packet)
    {
        Channel<byte[]>? queue;
        lock (_lock)
        {
            if (_closed)
                return false;
            if (!_peers.TryGetValue(to, out queue))
            {
                if (!IPEndPoint.TryParse(to, out var ep))
                    return false;
                queue = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(PeerQueue)
                    { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
                _peers[to] = queue;
                Track(PeerWriter(ep, queue.Reader));
            }
        }
        return queue.Writer.TryWrite(Frame((byte)'P', packet));
    }

    /// <summary>Sends the message over a new connection to <paramref name="to"/> and waits for
    /// the answer: its bytes, or null for "no reply".</summary>
    public async Task<byte[]?> SendStreamAsync(string to, byte[] message, TimeSpan timeout)
    {
        if (!IPEndPoint.TryParse(to, out var ep))
            throw new ArgumentException($"\"{to}\" is not an ip:port", nameof(to));
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        cts.CancelAfter(timeout);
        try
        {
            var tls = await Dial(ep, cts.Token).ConfigureAwait(false);
            try
            {
                await tls.WriteAsync(Frame((byte)'S', message), cts.Token).ConfigureAwait(false);
                var mark = new byte[1];
                if (await tls.ReadAsync(mark, cts.Token).ConfigureAwait(false) == 0)
                    throw new IOException($"{to} closed the stream without an answer");
                return mark[0] == 0 ? null : await ReadBody(tls, cts.Token).ConfigureAwait(false);
            }
            finally
            {
                Close(tls);
            }
        }
        catch (OperationCanceledException) when (!_stop.IsCancellationRequested)
        {
            throw new TimeoutException($"stream to {to}: no answer within {timeout}");
        }
    }

    /// <summary>Closes the listener and every connection and waits for the transport's tasks.
    /// Idempotent.</summary>
    public void Shutdown()
    {
        lock (_lock)
        {
            if (_closed)
                return;
            _closed = true;
            foreach (var q in _peers.Values)
                q.Writer.TryComplete();
        }
        _stop.Cancel();
        _listener.Dispose();
        foreach (var s in _open.Keys)
            Close(s);
        // Every task observes _stop; the bound only keeps a misbehaving peer from hanging us.
        try { Task.WaitAll([.. _tasks.Keys], TimeSpan.FromSeconds(30)); }
        catch (AggregateException) { } // each task handles its own failures; nothing to add
    }

    /// <summary>As <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();

    private void Track(Task t)
    {
        _tasks[t] = 0;
        t.ContinueWith(static (done, s) => ((TlsTransport)s!)._tasks.TryRemove(done, out _), this,
            CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private byte[] Frame(byte kind, ReadOnlySpan<byte> body)
    {
        string from;
        lock (_lock)
            from = _advertise ?? LocalEndPoint.ToString();
        var addr = Encoding.ASCII.GetBytes(from);
        var f = new byte[2 + addr.Length + 4 + body.Length];
        f[0] = kind;
        f[1] = (byte)addr.Length;
        addr.CopyTo(f, 2);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(2 + addr.Length), (uint)body.Length);
        body.CopyTo(f.AsSpan(6 + addr.Length));
        return f;
    }

    private static async Task<byte[]> ReadBody(Stream s, CancellationToken ct)
    {
        var n = new byte[4];
        await s.ReadExactlyAsync(n, ct).ConfigureAwait(false);
        uint size = BinaryPrimitives.ReadUInt32BigEndian(n);
        if (size > MaxFrame)
            throw new InvalidDataException($"a {size}-byte message is over the limit");
        var b = new byte[size];
        await s.ReadExactlyAsync(b, ct).ConfigureAwait(false);
        return b;
    }

    private bool Register(Stream s)
    {
        _open[s] = 0;
        lock (_lock)
            if (!_closed)
                return true;
        Close(s); // Shutdown may have missed it
        return false;
    }

    private void Close(Stream s)
    {
        _open.TryRemove(s, out _);
        try { s.Dispose(); }
        catch (Exception) { } // a broken connection may fail to send its close_notify
    }

    private async Task<SslStream> Dial(IPEndPoint ep, CancellationToken ct)
    {
        var socket = new Socket(ep.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(ep, ct).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        var tls = new SslStream(new NetworkStream(socket, ownsSocket: true));
        if (!Register(tls))
            throw new ObjectDisposedException(nameof(TlsTransport));
        try
        {
            var cert = _options.Certificate;
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = _options.TargetHost ?? ep.Address.ToString(),
                // The client certificate is ours whatever CAs the server names.
                LocalCertificateSelectionCallback = _options.MutualAuthentication ? (_, _, _, _, _) => cert : null,
                ClientCertificates = _options.MutualAuthentication ? [cert] : null,
                RemoteCertificateValidationCallback = _options.ValidateRemoteCertificate,
            }, ct).ConfigureAwait(false);
            return tls;
        }
        catch
        {
            Close(tls);
            throw;
        }
    }

    private async Task PeerWriter(IPEndPoint ep, ChannelReader<byte[]> queue)
    {
        SslStream? conn = null;
        try
        {
            await foreach (var frame in queue.ReadAllAsync(_stop.Token).ConfigureAwait(false))
            {
                using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
                cts.CancelAfter(PacketTimeout);
                try
                {
                    conn ??= await Dial(ep, cts.Token).ConfigureAwait(false);
                    await conn.WriteAsync(frame, cts.Token).ConfigureAwait(false);
                }
                catch (Exception) when (!_stop.IsCancellationRequested)
                {
                    // Lost, as a datagram may be; dial again for the next one.
                    if (conn is not null)
                        Close(conn);
                    conn = null;
                }
            }
        }
        catch (Exception) { } // Shutdown
        finally
        {
            if (conn is not null)
                Close(conn);
        }
    }

    private async Task AcceptLoop()
    {
        try
        {
            while (true)
            {
                var socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
                socket.NoDelay = true;
                Track(Serve(new SslStream(new NetworkStream(socket, ownsSocket: true))));
            }
        }
        catch (OperationCanceledException) { }
        catch (ObjectDisposedException) { }
        catch (SocketException) { } // the listener closed by Shutdown
    }

    /// <summary>Reads a connection's frames: datagrams until it closes, or one stream message
    /// whose connection then belongs to the reply.</summary>
    private async Task Serve(SslStream tls)
    {
        if (!Register(tls))
            return;
        bool keep = false;
        try
        {
            using (var hs = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token))
            {
                hs.CancelAfter(_options.HandshakeTimeout);
                var validate = _options.MutualAuthentication ? _options.ValidateRemoteCertificate
                    : (_, _, _, _) => true; // server-only: clients present nothing to check
                await tls.AuthenticateAsServerAsync(new SslServerAuthenticationOptions
                {
                    ServerCertificateContext = SslStreamCertificateContext.Create(_options.Certificate, null, offline: true),
                    ClientCertificateRequired = _options.MutualAuthentication,
                    RemoteCertificateValidationCallback = validate,
                }, hs.Token).ConfigureAwait(false);
            }
            var head = new byte[2];
            while (true)
            {
                if (await tls.ReadAtLeastAsync(head, 2, throwOnEndOfStream: false, _stop.Token).ConfigureAwait(false) < 2)
                    return; // closed
                byte kind = head[0];
                var from = new byte[head[1]];
                await tls.ReadExactlyAsync(from, _stop.Token).ConfigureAwait(false);
                var body = await ReadBody(tls, _stop.Token).ConfigureAwait(false);
                var sink = _sink!;
                var fromText = Encoding.ASCII.GetString(from);
                if (kind == 'P')
                {
                    sink.DeliverPacket(fromText, body);
                    continue;
                }
                if (kind != 'S')
                    return; // garbage
                keep = true; // the reply writes the answer and closes
                sink.DeliverStream(fromText, body, reply => Track(Answer(tls, reply)));
                return;
            }
        }
        catch (Exception) { } // a failed handshake, a broken or closed connection, Shutdown
        finally
        {
            if (!keep)
                Close(tls);
        }
    }

    private async Task Answer(SslStream tls, byte[]? reply)
    {
        try
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            cts.CancelAfter(_options.HandshakeTimeout);
            var f = new byte[reply is null ? 1 : 5 + reply.Length];
            if (reply is not null)
            {
                f[0] = 1;
                BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(1), (uint)reply.Length);
                reply.CopyTo(f, 5);
            }
            await tls.WriteAsync(f, cts.Token).ConfigureAwait(false);
        }
        catch (Exception) { } // the peer went away: it sees a failed stream
        finally
        {
            Close(tls);
        }
    }
}
