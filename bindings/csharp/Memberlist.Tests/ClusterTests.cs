using System.Collections.Concurrent;
using LibMemberlist.Interop;

namespace LibMemberlist.Tests;

/// <summary>Real sockets on loopback. Waits poll with generous deadlines (the machine may be
/// loaded), never fixed sleeps.</summary>
public class ClusterTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);

    internal static MemberlistConfig FastConfig(string name)
    {
        var c = MemberlistConfig.Local();
        c.Name = name;
        c.BindAddress = "127.0.0.1";
        c.BindPort = 0;
        c.ProbeInterval = TimeSpan.FromMilliseconds(200);
        c.ProbeTimeout = TimeSpan.FromMilliseconds(100);
        c.GossipInterval = TimeSpan.FromMilliseconds(50);
        c.PushPullInterval = TimeSpan.FromSeconds(2);
        return c;
    }

    internal static void WaitFor(string what, Func<bool> cond)
    {
        var start = DateTime.UtcNow;
        while (!cond())
        {
            if (DateTime.UtcNow - start > Deadline)
                Assert.Fail($"timed out waiting for {what}");
            Thread.Sleep(20);
        }
    }

    internal static Memberlist Create(string name, IEventDelegate? events = null,
        Action<MemberlistConfig>? tweak = null, Action<LogLevel, string>? log = null)
    {
        using var c = FastConfig(name);
        tweak?.Invoke(c);
        return Memberlist.Create(c, events, log);
    }

    /// <summary>Keeps every event with the managed thread it arrived on.</summary>
    internal sealed class Recorder : IEventDelegate
    {
        public readonly ConcurrentQueue<(string Kind, Node Node, int Thread)> Events = new();
        private void Add(string kind, Node n) => Events.Enqueue((kind, n, Environment.CurrentManagedThreadId));
        public void NotifyJoin(Node node) => Add("join", node);
        public void NotifyLeave(Node node) => Add("leave", node);
        public void NotifyUpdate(Node node) => Add("update", node);
        public bool Has(string kind, string name, NodeState state) =>
            Events.Any(e => e.Kind == kind && e.Node.Name == name && e.Node.State == state);
    }

    private static string Names(Memberlist m) =>
        string.Join(",", m.Members().Select(n => n.Name).OrderBy(n => n, StringComparer.Ordinal));

    [Fact]
    public void LayoutMatchesC()
    {
        foreach (var (what, actual, expected) in Native.LayoutChecks())
            Assert.True(actual == expected, $"{what}: C# says {actual}, libclang says {expected}");
    }

    [Fact]
    public void ThreeNodeClusterJoinMetaLeaveAndFailure()
    {
        var (ra, rb, rc) = (new Recorder(), new Recorder(), new Recorder());
        using var a = Create("cs-a", ra, c => c.Meta = "role=seed"u8.ToArray());
        using var b = Create("cs-b", rb);
        using var c = Create("cs-c", rc);

        var seed = a.LocalNode;
        Assert.Equal("127.0.0.1", seed.Host);
        Assert.NotEqual(0, seed.Port);
        Assert.Equal(1, b.Join(seed.Address));
        Assert.Equal(1, c.Join(seed.Address));

        WaitFor("three members everywhere",
            () => new[] { a, b, c }.All(m => m.NumMembers == 3 && Names(m) == "cs-a,cs-b,cs-c"));
        var aSeenByC = c.Members().Single(n => n.Name == "cs-a");
        Assert.Equal("role=seed"u8.ToArray(), aSeenByC.Meta);
        Assert.Equal(NodeState.Alive, aSeenByC.State);
        Assert.True(ra.Has("join", "cs-a", NodeState.Alive), "local join event at create");
        Assert.True(rb.Has("join", "cs-c", NodeState.Alive));

        // Callbacks arrive on library threads, not the test's.
        int me = Environment.CurrentManagedThreadId;
        Assert.DoesNotContain(ra.Events, e => e.Thread == me);

        c.Leave(TimeSpan.FromSeconds(10));
        WaitFor("a sees c left", () => ra.Has("leave", "cs-c", NodeState.Left));
        c.Dispose();
        b.Dispose(); // no leave: a must detect a failure
        WaitFor("a sees b dead", () => ra.Has("leave", "cs-b", NodeState.Dead));
        WaitFor("a alone", () => a.NumMembers == 1);
        Assert.True(a.HealthScore >= 0);
        Assert.Throws<ObjectDisposedException>(() => b.NumMembers);
    }

    [Fact]
    public void PingMeasuresRttAndRefusesUnknownNames()
    {
        using var a = Create("cs-ping-a");
        using var b = Create("cs-ping-b");
        b.Join(a.LocalNode.Address);
        WaitFor("a knows b", () => a.NumMembers == 2);
        var rtt = a.Ping("cs-ping-b");
        Assert.InRange(rtt, TimeSpan.Zero, TimeSpan.FromSeconds(5));
        var e = Assert.Throws<MemberlistException>(() => a.Ping("nobody"));
        Assert.Equal(MemberlistStatus.NotFound, e.Status);
    }

    private sealed class Throwing : IEventDelegate
    {
        public int Calls;
        public void NotifyJoin(Node node) { Interlocked.Increment(ref Calls); throw new InvalidOperationException("deliberate"); }
        public void NotifyLeave(Node node) { Interlocked.Increment(ref Calls); throw new InvalidOperationException("deliberate"); }
        public void NotifyUpdate(Node node) { Interlocked.Increment(ref Calls); throw new InvalidOperationException("deliberate"); }
    }

    [Fact]
    public void ThrowingCallbacksDoNotCrash()
    {
        var reported = 0;
        Action<Exception> onError = e => { if (e.Message == "deliberate") Interlocked.Increment(ref reported); };
        Memberlist.CallbackException += onError;
        try
        {
            var t = new Throwing();
            using var a = Create("cs-throw", t, c => c.LogLevel = LogLevel.Debug,
                (_, _) => throw new InvalidOperationException("deliberate"));
            using var b = Create("cs-throw-peer");
            b.Join(a.LocalNode.Address);
            WaitFor("throwing delegate called", () => Volatile.Read(ref t.Calls) >= 2);
            WaitFor("cluster still works", () => a.NumMembers == 2 && b.NumMembers == 2);
            Assert.True(Volatile.Read(ref reported) >= 2);
        }
        finally
        {
            Memberlist.CallbackException -= onError;
        }
    }

    private sealed class CallsBack : IEventDelegate
    {
        public Memberlist? Self;
        public volatile int Members;
        public volatile MemberlistException? JoinError;
        public void NotifyJoin(Node node)
        {
            var self = Self;
            if (self is null || node.Name != "cs-cb-peer")
                return;
            try { self.Join("127.0.0.1:1"); }
            catch (MemberlistException e) { JoinError = e; }
            Members = self.Members().Count;
        }
        public void NotifyLeave(Node node) { }
        public void NotifyUpdate(Node node) { }
    }

    [Fact]
    public void CallsFromInsideACallback()
    {
        var d = new CallsBack();
        using var a = Create("cs-cb", d);
        d.Self = a;
        using var b = Create("cs-cb-peer");
        b.Join(a.LocalNode.Address);
        WaitFor("callback ran", () => d.Members != 0);
        Assert.Equal(2, d.Members);
        Assert.Equal(MemberlistStatus.State, d.JoinError?.Status);
    }

    [Fact]
    public void ConfigSettersRefuseBadValues()
    {
        using var c = MemberlistConfig.Lan();
        var e = Assert.Throws<MemberlistException>(() => c.ProtocolVersion = 99);
        Assert.Equal(MemberlistStatus.Invalid, e.Status);
        Assert.NotEmpty(e.Detail);
        Assert.Equal(MemberlistStatus.Invalid, Assert.Throws<MemberlistException>(() => c.Name = "").Status);
        Assert.Equal(MemberlistStatus.TooLarge, Assert.Throws<MemberlistException>(() => c.Meta = new byte[100_000]).Status);
        Assert.Equal(MemberlistStatus.Invalid, Assert.Throws<MemberlistException>(() => c.ProbeInterval = TimeSpan.FromMilliseconds(-1)).Status);

        c.ProbeInterval = TimeSpan.FromMilliseconds(1234);
        Assert.Equal(TimeSpan.FromMilliseconds(1234), c.ProbeInterval);
        c.Name = "named";
        using var copy = c.Clone();
        Assert.Equal("named", copy.Name);
        using var wan = MemberlistConfig.Wan();
        using var local = MemberlistConfig.Local();
        Assert.True(wan.ProbeInterval > local.ProbeInterval);
    }

    [Fact]
    public void GCHandlesFreedOnDisposeAndFailedCreate()
    {
        lock (GcStressTests.LiveLock)
        {
            int before = Volatile.Read(ref CallbackState.Live);
            var m = Create("cs-free", new Recorder());
            Assert.Equal(before + 1, Volatile.Read(ref CallbackState.Live));
            m.Dispose();
            m.Dispose();
            Assert.Throws<MemberlistException>(() => Create("cs-free-bad", new Recorder(), c => c.BindAddress = "192.0.2.1"));
            Assert.Equal(before, Volatile.Read(ref CallbackState.Live));
        }
    }
}
