using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace LibMemberlist.Tests;

/// <summary>The host transport (ITransport): a cluster over TlsTransport, and the binding's
/// guards against failing transports and against a transport calling in after close. Waits
/// poll with generous deadlines, never fixed sleeps.</summary>
public class TransportTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    private static void WaitFor(string what, Func<bool> cond)
    {
        var start = DateTime.UtcNow;
        while (!cond())
        {
            if (DateTime.UtcNow - start > Deadline)
                Assert.Fail($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    /// <summary>A self-signed ECDSA certificate, re-imported from PFX so that SslStream gets a
    /// persisted key on every platform.</summary>
    internal static X509Certificate2 SelfSigned(string cn)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
        using var ephemeral = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
    }

    private static string Pin(X509Certificate2 c) => c.GetCertHashString(HashAlgorithmName.SHA256);

    /// <summary>Records user messages and broadcasts.</summary>
    private sealed class Hooks : IDelegate, IBroadcastDelegate
    {
        public readonly ConcurrentQueue<string> Messages = new();
        public readonly ConcurrentQueue<string> Broadcasts = new();
        public byte[] NodeMeta(int limit) => [];
        public void NotifyMsg(byte[] message) => Messages.Enqueue(System.Text.Encoding.UTF8.GetString(message));
        public IEnumerable<byte[]> GetBroadcasts(int overhead, int limit) => [];
        public byte[] LocalState(bool join) => [];
        public void MergeRemoteState(byte[] state, bool join) { }
        public void NotifyBroadcast(string origin, string name, byte[] message) =>
            Broadcasts.Enqueue($"{origin}:{System.Text.Encoding.UTF8.GetString(message)}");
        public void NotifyBroadcastDone(ulong id, BroadcastOutcome outcome) { }
    }

    private sealed record TlsNode(Memberlist List, TlsTransport Transport, ClusterTests.Recorder Events, Hooks Hooks);

    private static TlsNode Node(string name, X509Certificate2 cert, bool mutual = true, string? pin = null)
    {
        var transport = new TlsTransport(new TlsTransportOptions
        {
            Certificate = cert,
            MutualAuthentication = mutual,
            ValidateRemoteCertificate = TlsTransport.PinThumbprint(pin ?? Pin(cert)),
        });
        using var c = ClusterTests.FastConfig(name);
        // Datagrams ride TLS connections that are dialed on first use, and the first TLS
        // handshake of the process (cold JIT and OpenSSL) is slow on a loaded machine: slack.
        c.ProbeInterval = TimeSpan.FromMilliseconds(500);
        c.ProbeTimeout = TimeSpan.FromMilliseconds(250);
        c.TcpTimeout = TimeSpan.FromSeconds(15);
        var (events, hooks) = (new ClusterTests.Recorder(), new Hooks());
        var list = Memberlist.Create(c, new MemberlistDelegates
        {
            Events = events, Delegate = hooks, Broadcasts = hooks, Transport = transport,
        });
        return new TlsNode(list, transport, events, hooks);
    }

    private static string Names(Memberlist m) =>
        string.Join(",", m.Members().Select(n => n.Name).OrderBy(n => n, StringComparer.Ordinal));

    [Fact]
    public void ThreeNodesOverMutualTlsJoinMessagesLeaveAndFailure()
    {
        using var cert = SelfSigned("memberlist-cluster");
        var a = Node("tls-a", cert);
        var b = Node("tls-b", cert);
        var c = Node("tls-c", cert);
        try
        {
            // The node advertises the transport's address, not a bound socket's.
            Assert.Equal(a.Transport.LocalEndPoint.ToString(), a.List.LocalNode.Address);
            Assert.Equal(1, b.List.Join(a.List.LocalNode.Address));
            Assert.Equal(1, c.List.Join(a.List.LocalNode.Address));
            WaitFor("three members everywhere",
                () => new[] { a, b, c }.All(n => Names(n.List) == "tls-a,tls-b,tls-c"));

            // A reliable message (a stream) and a broadcast (gossip datagrams).
            b.List.SendReliable("tls-c", "hello c"u8.ToArray());
            WaitFor("c gets b's message", () => c.Hooks.Messages.Contains("hello c"));
            a.List.QueueBroadcast("news", "from a"u8.ToArray());
            WaitFor("b and c get a's broadcast",
                () => b.Hooks.Broadcasts.Contains("tls-a:from a") && c.Hooks.Broadcasts.Contains("tls-a:from a"));

            // A graceful leave is seen as left by the other two.
            c.List.Leave(TimeSpan.FromSeconds(10));
            WaitFor("a and b see c left",
                () => a.Events.Has("leave", "tls-c", NodeState.Left) && b.Events.Has("leave", "tls-c", NodeState.Left));
            c.List.Dispose();

            // A third node again, then it fails: disposed without leaving, its transport stopped.
            var d = Node("tls-d", cert);
            c = d;
            Assert.Equal(1, d.List.Join(b.List.LocalNode.Address));
            WaitFor("three members again", () => new[] { a, b, d }.All(n => Names(n.List) == "tls-a,tls-b,tls-d"));
            d.List.Dispose();
            Assert.Throws<ObjectDisposedException>(() => d.List.NumMembers);
            Assert.False(d.Transport.SendPacket(a.List.LocalNode.Address, [1]), "the transport is stopped");
            WaitFor("a and b see d dead",
                () => a.Events.Has("leave", "tls-d", NodeState.Dead) && b.Events.Has("leave", "tls-d", NodeState.Dead));
            WaitFor("two members left", () => a.List.NumMembers == 2 && b.List.NumMembers == 2);
        }
        finally
        {
            foreach (var n in new[] { a, b, c })
                n.List.Dispose();
        }
    }

    [Fact]
    public void ServerOnlyTlsJoinsAndCarriesMessages()
    {
        using var cert = SelfSigned("memberlist-server-only");
        var a = Node("tls-so-a", cert, mutual: false);
        var b = Node("tls-so-b", cert, mutual: false);
        try
        {
            Assert.Equal(1, b.List.Join(a.List.LocalNode.Address));
            WaitFor("two members both ways", () => a.List.NumMembers == 2 && b.List.NumMembers == 2);
            a.List.SendReliable("tls-so-b", "over tls"u8.ToArray());
            WaitFor("b gets a's message", () => b.Hooks.Messages.Contains("over tls"));
        }
        finally
        {
            a.List.Dispose();
            b.List.Dispose();
        }
    }

    [Fact]
    public void AnUntrustedCertificateFailsTheJoin()
    {
        using var good = SelfSigned("memberlist-good");
        using var other = SelfSigned("memberlist-other");
        var a = Node("tls-pin-a", good);
        // b trusts only `other`: a's certificate does not match its pin.
        var b = Node("tls-pin-b", good, pin: Pin(other));
        try
        {
            var e = Assert.Throws<MemberlistException>(() => b.List.Join(a.List.LocalNode.Address));
            Assert.NotEqual(MemberlistStatus.Ok, e.Status);
            Assert.Equal(1, b.List.NumMembers);
            Assert.Equal(1, a.List.NumMembers);
        }
        finally
        {
            a.List.Dispose();
            b.List.Dispose();
        }
    }

    /// <summary>A transport under the test's control: it keeps the sink, fails or holds the
    /// sends, and counts its Shutdowns.</summary>
    private sealed class FakeTransport(bool fail) : ITransport
    {
        public volatile TransportSink? Sink;
        public int Packets, Streams, Shutdowns;
        public readonly ConcurrentQueue<TaskCompletionSource<byte[]?>> Held = new();
        public Exception? PacketException;

        public IPEndPoint FinalAdvertiseAddress(string advertiseAddress, int advertisePort) =>
            new(IPAddress.Loopback, 17946);
        public void Start(TransportSink sink) => Sink = sink;
        public bool SendPacket(string to, ReadOnlySpan<byte> packet)
        {
            Interlocked.Increment(ref Packets);
            if (PacketException is not null)
                throw PacketException;
            return !fail;
        }
        public Task<byte[]?> SendStreamAsync(string to, byte[] message, TimeSpan timeout)
        {
            Interlocked.Increment(ref Streams);
            if (fail)
                return Task.FromException<byte[]?>(new IOException("link down"));
            var held = new TaskCompletionSource<byte[]?>();
            Held.Enqueue(held);
            return held.Task;
        }
        public void Shutdown() => Interlocked.Increment(ref Shutdowns);
    }

    private static Memberlist Create(string name, ITransport transport)
    {
        using var c = ClusterTests.FastConfig(name);
        return Memberlist.Create(c, new MemberlistDelegates { Transport = transport });
    }

    [Fact]
    public void AFailingTransportFailsTheJoinWithAClearError()
    {
        var t = new FakeTransport(fail: true);
        using (var a = Create("tr-fail", t))
        {
            Assert.Equal("127.0.0.1:17946", a.LocalNode.Address);
            var e = Assert.Throws<MemberlistException>(() => a.Join("127.0.0.1:17947"));
            Assert.Equal(MemberlistStatus.Io, e.Status);
            Assert.Contains("127.0.0.1:17947", e.Message);
            Assert.True(Volatile.Read(ref t.Streams) >= 1, "the join went through the transport");
            // A refused datagram is a dropped send, not an error.
            a.SendToAddress("127.0.0.1:17947", "x"u8.ToArray());
            WaitFor("the datagram reached the transport", () => Volatile.Read(ref t.Packets) >= 1);
            Assert.Equal(1, a.NumMembers);
            Assert.Equal(0, Volatile.Read(ref t.Shutdowns));
        }
        Assert.Equal(1, Volatile.Read(ref t.Shutdowns));
    }

    [Fact]
    public void AThrowingTransportIsReportedNotCrashed()
    {
        var reported = new ConcurrentQueue<Exception>();
        Action<Exception> onError = e => { if (e.Message == "deliberate") reported.Enqueue(e); };
        Memberlist.CallbackException += onError;
        try
        {
            var t = new FakeTransport(fail: false) { PacketException = new InvalidOperationException("deliberate") };
            using var a = Create("tr-throw", t);
            a.SendToAddress("127.0.0.1:17947", "x"u8.ToArray());
            WaitFor("the exception reported", () => !reported.IsEmpty);
            Assert.Equal(1, a.NumMembers);
        }
        finally
        {
            Memberlist.CallbackException -= onError;
        }
    }

    [Fact]
    public void ABadAdvertiseAddressFailsCreateAndShutsTheTransportDown()
    {
        var t = new AnyAddress();
        using var c = ClusterTests.FastConfig("tr-any");
        int before = Volatile.Read(ref TransportBinding.Live);
        var e = Assert.Throws<MemberlistException>(() => Memberlist.Create(c, new MemberlistDelegates { Transport = t }));
        Assert.Equal(MemberlistStatus.Invalid, e.Status);
        Assert.Contains("specific IP", e.Message);
        Assert.Equal(1, t.Shutdowns);
        Assert.Equal(before, Volatile.Read(ref TransportBinding.Live));
    }

    private sealed class AnyAddress : ITransport
    {
        public int Shutdowns;
        public IPEndPoint FinalAdvertiseAddress(string advertiseAddress, int advertisePort) => new(IPAddress.Any, 7946);
        public void Start(TransportSink sink) => throw new InvalidOperationException("never started");
        public bool SendPacket(string to, ReadOnlySpan<byte> packet) => false;
        public Task<byte[]?> SendStreamAsync(string to, byte[] message, TimeSpan timeout) => Task.FromResult<byte[]?>(null);
        public void Shutdown() => Shutdowns++;
    }

    /// <summary>Counts the calls of one inbound stream's reply.</summary>
    private sealed class ReplyProbe
    {
        public int Calls;
        public volatile bool GotNull;
        public void Reply(byte[]? answer)
        {
            Interlocked.Increment(ref Calls);
            GotNull = answer is null;
        }
    }

    [Fact]
    public void TransportCallsAfterCloseAreHarmless()
    {
        int live = Volatile.Read(ref TransportBinding.Live);
        var t = new FakeTransport(fail: false);
        var a = Create("tr-late", t);
        var sink = t.Sink;
        Assert.NotNull(sink);

        // While it runs: an inbound stream of garbage is answered exactly once, without a reply.
        var garbage = new ReplyProbe();
        Assert.True(sink.DeliverStream("127.0.0.1:17950", [0xff, 0xfe, 0xfd], garbage.Reply));
        WaitFor("the garbage stream answered", () => Volatile.Read(ref garbage.Calls) == 1);
        Assert.True(garbage.GotNull);
        Assert.True(sink.DeliverPacket("127.0.0.1:17950", [0xff]), "a datagram is taken (then dropped as garbage)");

        // An outgoing stream the transport holds past the memberlist's end.
        var join = a.JoinAsync("127.0.0.1:17951");
        WaitFor("the join's stream reached the transport", () => !t.Held.IsEmpty);
        a.Dispose();
        Assert.Equal(1, Volatile.Read(ref t.Shutdowns));
        var e = Assert.Throws<AggregateException>(() => join.Wait(Deadline));
        Assert.IsType<MemberlistException>(e.InnerException);

        // Now the transport calls in: refused, harmless, every reply still exactly once.
        int finished = Volatile.Read(ref TransportBinding.StreamsFinished);
        Assert.True(t.Held.TryDequeue(out var held));
        held.SetResult("late reply"u8.ToArray());
        WaitFor("the late completion ran", () => Volatile.Read(ref TransportBinding.StreamsFinished) > finished);
        Assert.False(sink.DeliverPacket("127.0.0.1:17950", [1, 2, 3]));
        var late = new ReplyProbe();
        Assert.False(sink.DeliverStream("127.0.0.1:17950", [1, 2, 3], late.Reply));
        WaitFor("the refused stream closed", () => Volatile.Read(ref late.Calls) == 1);
        Assert.True(late.GotNull);
        WaitFor("the transport's GCHandle freed", () => Volatile.Read(ref TransportBinding.Live) == live);
        Assert.Equal(1, Volatile.Read(ref garbage.Calls));
        Assert.Equal(1, Volatile.Read(ref late.Calls));
        Assert.Equal(1, Volatile.Read(ref t.Shutdowns));
    }

    [Fact]
    public void AfterShutdownTheSinkRefusesAndTheTransportStopsOnce()
    {
        var t = new FakeTransport(fail: false);
        using var a = Create("tr-shut", t);
        var sink = t.Sink!;
        a.Shutdown();
        Assert.Equal(1, Volatile.Read(ref t.Shutdowns));
        Assert.False(sink.DeliverPacket("127.0.0.1:17950", [1]));
        var probe = new ReplyProbe();
        Assert.False(sink.DeliverStream("127.0.0.1:17950", [1], probe.Reply));
        WaitFor("the refused stream closed", () => Volatile.Read(ref probe.Calls) == 1);
        a.Shutdown();
        a.Dispose();
        Assert.Equal(1, Volatile.Read(ref t.Shutdowns));
        Assert.Equal(1, Volatile.Read(ref probe.Calls));
    }
}
