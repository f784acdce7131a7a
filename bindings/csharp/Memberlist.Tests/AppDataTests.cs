using System.Collections.Concurrent;
using LibMemberlist.Interop;
using static LibMemberlist.Tests.ClusterTests;

namespace LibMemberlist.Tests;

/// <summary>Application data over real sockets on loopback: metadata, broadcasts, user
/// messages, push/pull state, ack payloads, vetoes, metrics and encryption, with every hook
/// installed and the GC forced inside and around callbacks.</summary>
public class AppDataTests
{
    /// <summary>Implements every hook and records what arrives and on which thread.</summary>
    internal sealed class Hooks(string name) : IDelegate, IPingDelegate, IBroadcastDelegate, IEventDelegate
    {
        public readonly string Name = name;
        public volatile byte[] Meta = System.Text.Encoding.UTF8.GetBytes("meta-" + name);
        /// <summary>Handed out once by GetBroadcasts.</summary>
        public byte[]? Piggy;
        public readonly ConcurrentQueue<byte[]> Messages = new();
        public readonly ConcurrentDictionary<string, int> Broadcasts = new();
        public readonly ConcurrentDictionary<ulong, BroadcastOutcome> Done = new();
        public readonly ConcurrentDictionary<string, string> Pings = new();
        public readonly ConcurrentDictionary<string, bool> RemoteStates = new();
        public readonly ConcurrentQueue<(string Kind, Node Node)> Events = new();
        public readonly ConcurrentDictionary<int, bool> Threads = new();
        private long _calls;

        /// <summary>For notifications, which arrive on library threads: records the thread.
        /// (Hooks such as NodeMeta may run inside the API call that asks for them.)</summary>
        private void Notified()
        {
            Threads[Environment.CurrentManagedThreadId] = true;
            Enter();
        }

        /// <summary>Every 16th call allocates and forces a collection while native frames are on
        /// the stack.</summary>
        private void Enter()
        {
            if (Interlocked.Increment(ref _calls) % 16 == 0)
            {
                _ = new byte[64 << 10];
                GC.Collect();
            }
        }

        public byte[] NodeMeta(int limit) { Enter(); return Meta; }
        public void NotifyMsg(byte[] message) { Notified(); Messages.Enqueue(message); }
        public IEnumerable<byte[]> GetBroadcasts(int overhead, int limit)
        {
            Enter();
            var msg = Interlocked.Exchange(ref Piggy, null);
            return msg is null ? [] : [msg];
        }
        public byte[] LocalState(bool join) { Enter(); return System.Text.Encoding.UTF8.GetBytes("state-of-" + Name); }
        public void MergeRemoteState(byte[] state, bool join) { Enter(); RemoteStates[System.Text.Encoding.UTF8.GetString(state)] = true; }
        public byte[] AckPayload() { Enter(); return System.Text.Encoding.UTF8.GetBytes("ack:" + Name); }
        public void NotifyPingComplete(Node other, TimeSpan rtt, byte[] payload) { Notified(); Pings[other.Name] = System.Text.Encoding.UTF8.GetString(payload); }
        public void NotifyBroadcast(string origin, string name, byte[] message)
        {
            Notified();
            Broadcasts.AddOrUpdate($"{origin}/{name}/{System.Text.Encoding.UTF8.GetString(message)}", 1, (_, n) => n + 1);
        }
        public void NotifyBroadcastDone(ulong id, BroadcastOutcome outcome) { Notified(); Done[id] = outcome; }
        public void NotifyJoin(Node node) { Notified(); Events.Enqueue(("join", node)); }
        public void NotifyLeave(Node node) { Notified(); Events.Enqueue(("leave", node)); }
        public void NotifyUpdate(Node node) { Notified(); Events.Enqueue(("update", node)); }
        public bool HasMessage(byte[] m) => Messages.Any(x => x.AsSpan().SequenceEqual(m));
        public bool Has(string kind, string name, NodeState state) =>
            Events.Any(e => e.Kind == kind && e.Node.Name == name && e.Node.State == state);
    }

    internal static Memberlist CreateWith(Hooks h, Action<MemberlistConfig>? tweak = null,
        Action<string, MetricKind, double>? metrics = null)
    {
        using var c = FastConfig(h.Name);
        // Broadcast delivery is epidemic, so chance in general; here it is not: with
        // GossipNodes above the cluster size every gossip round sends to every peer (suspect or
        // dead ones included, for GossipToTheDeadTime), so each peer is sent each broadcast
        // RetransmitMult * ceil(log10(n + 1)) / (n - 1) times: at least twice up to 5 nodes.
        c.RetransmitMult = 8;
        c.GossipNodes = 8;
        c.GossipToTheDeadTime = TimeSpan.FromSeconds(60);
        tweak?.Invoke(c);
        return Memberlist.Create(c, new MemberlistDelegates
        {
            Events = h, Delegate = h, Ping = h, Broadcasts = h, Metrics = metrics,
        });
    }

    private static string MetaOf(Memberlist m, string name) =>
        m.Members().Where(n => n.Name == name).Select(n => System.Text.Encoding.UTF8.GetString(n.Meta))
            .FirstOrDefault() ?? "<absent>";

    private static byte[] B(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    [Fact]
    public void ThreeNodesApplicationData()
    {
        lock (GcStressTests.LiveLock)
        {
            int before = Volatile.Read(ref CallbackState.Live);
            using var stop = new CancellationTokenSource();
            var collector = new Thread(() =>
            {
                while (!stop.IsCancellationRequested)
                {
                    GC.Collect();
                    Thread.Sleep(1);
                }
            });
            collector.Start();
            long samples = 0;
            string[] names = ["cs-app-a", "cs-app-b", "cs-app-c"];
            var hooks = names.Select(n => new Hooks(n)).ToArray();
            var nodes = hooks.Select(h => CreateWith(h, null, (_, _, _) => Interlocked.Increment(ref samples))).ToArray();
            try
            {
                var (a, b, c) = (nodes[0], nodes[1], nodes[2]);
                var seed = a.LocalNode.Address;
                b.Join(seed);
                c.Join(seed);
                WaitFor("three members with metadata", () =>
                    nodes.All(m => names.All(n => MetaOf(m, n) == "meta-" + n)));
                WaitFor("push/pull state merged", () =>
                    hooks[0].RemoteStates.ContainsKey("state-of-cs-app-b") && hooks[0].RemoteStates.ContainsKey("state-of-cs-app-c"));

                // Metadata updated later: through the NodeMeta hook, and set directly.
                hooks[0].Meta = B("meta-a-v2");
                a.UpdateNode(TimeSpan.FromSeconds(10));
                b.SetMeta(B("meta-b-v2"), TimeSpan.FromSeconds(10));
                WaitFor("updated metadata everywhere", () =>
                    nodes.All(m => MetaOf(m, "cs-app-a") == "meta-a-v2" && MetaOf(m, "cs-app-b") == "meta-b-v2"));
                WaitFor("c saw b's update", () => hooks[2].Has("update", "cs-app-b", NodeState.Alive));
                var tooLarge = Assert.Throws<MemberlistException>(() => b.SetMeta(new byte[600], TimeSpan.FromSeconds(1)));
                Assert.Equal(MemberlistStatus.TooLarge, tooLarge.Status);

                // A broadcast: every other node delivers it exactly once; the origin hears it is done.
                ulong id = a.QueueBroadcast("greeting", B("hello cluster"));
                WaitFor("broadcast done", () => hooks[0].Done.TryGetValue(id, out var o) && o == BroadcastOutcome.Settled);
                foreach (var h in hooks.Skip(1))
                {
                    WaitFor("broadcast at " + h.Name, () => h.Broadcasts.ContainsKey("cs-app-a/greeting/hello cluster"));
                    Assert.Equal(1, h.Broadcasts["cs-app-a/greeting/hello cluster"]);
                }
                WaitFor("no broadcast queued at a", () => a.NumQueuedBroadcasts == 0);

                // A message piggybacked through GetBroadcasts reaches some member's NotifyMsg
                // (offered again until taken: a packet may be lost).
                var piggy = B("piggybacked on gossip");
                WaitFor("piggybacked message", () =>
                {
                    Interlocked.CompareExchange(ref hooks[0].Piggy, piggy, null);
                    Thread.Sleep(20);
                    return hooks[1].HasMessage(piggy) || hooks[2].HasMessage(piggy);
                });

                // Best effort (UDP may drop: resend until seen), to an address, reliable.
                var udp = B("best-effort \u0001\u0002 payload");
                WaitFor("best-effort message", () =>
                {
                    a.SendBestEffort("cs-app-b", udp);
                    Thread.Sleep(50);
                    return hooks[1].HasMessage(udp);
                });
                var bAddr = b.LocalNode.Address;
                WaitFor("message to an address", () =>
                {
                    c.SendToAddress(bAddr, B("to an address"));
                    Thread.Sleep(50);
                    return hooks[1].HasMessage(B("to an address"));
                });
                var large = new byte[256 << 10];
                for (int i = 0; i < large.Length; i++)
                    large[i] = (byte)(i * 7);
                a.SendReliable("cs-app-c", large);
                WaitFor("reliable message intact", () => hooks[2].HasMessage(large));
                Assert.Equal(MemberlistStatus.TooLarge,
                    Assert.Throws<MemberlistException>(() => a.SendBestEffort("cs-app-b", new byte[64 << 10])).Status);
                Assert.Throws<MemberlistException>(() => a.SendReliable("nobody", B("x")));

                WaitFor("ack payload from a", () => hooks[1].Pings.TryGetValue("cs-app-a", out var p) && p == "ack:cs-app-a");

                var metrics = a.Metrics();
                Assert.NotEmpty(metrics);
                Assert.All(metrics, m => Assert.StartsWith("memberlist", m.Name));
                Assert.Contains("# TYPE", a.Prometheus());
                Assert.True(Interlocked.Read(ref samples) > 0, "no metric samples");

                // Notifications so far came on library threads (checked before the shutdowns).
                int me = Environment.CurrentManagedThreadId;
                Assert.All(hooks, h => Assert.False(h.Threads.ContainsKey(me), $"{h.Name}: callback on the test thread"));

                // Leave and failure detection.
                c.Leave(TimeSpan.FromSeconds(10));
                WaitFor("a sees c left", () => hooks[0].Has("leave", "cs-app-c", NodeState.Left));
                c.Dispose();
                b.Dispose();
                WaitFor("a sees b dead", () => hooks[0].Has("leave", "cs-app-b", NodeState.Dead));
            }
            finally
            {
                foreach (var m in nodes)
                    m.Dispose();
                stop.Cancel();
                collector.Join();
            }
            Assert.Equal(before, Volatile.Read(ref CallbackState.Live));
        }
    }

    private sealed class VetoSeed : IMergeDelegate
    {
        public string? NotifyMerge(IReadOnlyList<Node> peers) =>
            peers.Any(p => p.Name == "cs-veto-seed") ? "not that cluster" : null;
    }

    [Fact]
    public void MergeVetoFailsTheJoin()
    {
        using var seed = Create("cs-veto-seed");
        using var c = FastConfig("cs-veto-bad");
        using var bad = Memberlist.Create(c, new MemberlistDelegates { Merge = new VetoSeed() });
        var e = Assert.Throws<MemberlistException>(() => bad.Join(seed.LocalNode.Address));
        // The header promises Rejected; the library currently reports the failed join as Io
        // with the hook's reason in the message, which is what is checked here.
        Assert.Contains("not that cluster", e.Message);
    }

    [Fact]
    public void EncryptedClusterConvergesAndRotatesKeys()
    {
        byte[] k1 = Enumerable.Repeat((byte)1, 32).ToArray(), k2 = Enumerable.Repeat((byte)2, 16).ToArray(),
            k3 = Enumerable.Repeat((byte)3, 24).ToArray();
        void Secure(MemberlistConfig c)
        {
            c.Label = "cs-secure";
            c.AddKey(k1);
            c.AddKey(k2);
        }
        var hooks = Enumerable.Range(0, 3).Select(i => new Hooks($"cs-enc-{i}")).ToArray();
        var nodes = hooks.Select(h => CreateWith(h, Secure)).ToList();
        try
        {
            var seed = nodes[0].LocalNode.Address;
            foreach (var m in nodes.Skip(1))
                m.Join(seed);
            WaitFor("encrypted cluster of three", () => nodes.All(m => m.NumMembers == 3));
            var keys = nodes[1].Keys();
            Assert.Equal(2, keys.Count);
            Assert.Equal(k1, keys[0]);
            nodes[0].QueueBroadcast(null, B("secret"));
            foreach (var h in hooks.Skip(1))
                WaitFor("encrypted broadcast", () => h.Broadcasts.TryGetValue("cs-enc-0//secret", out var n) && n == 1);

            foreach (var m in nodes) m.AddKey(k3);
            foreach (var m in nodes) m.UseKey(k3);
            foreach (var m in nodes)
            {
                m.RemoveKey(k1);
                Assert.Throws<MemberlistException>(() => m.RemoveKey(k3));
                Assert.Equal(k3, m.Keys()[0]);
            }
            nodes[0].SetGossipVerify(true, true);
            using var lc = FastConfig("cs-enc-late");
            lc.Label = "cs-secure";
            lc.AddKey(k3);
            nodes.Add(Memberlist.Create(lc));
            nodes[3].Join(seed);
            WaitFor("four members after rotation", () => nodes.All(m => m.NumMembers == 4));
        }
        finally
        {
            foreach (var m in nodes)
                m.Dispose();
        }
    }

    [Fact]
    public void SecurityKnobsRoundTrip()
    {
        using var c = FastConfig("cs-knobs");
        c.Label = "lbl";
        c.GossipVerifyIncoming = false;
        c.EnableCompression = false;
        c.EnableChecksum = false;
        c.MaxUserMsgSize = 4096;
        c.PostJoinPushPulls = 0;
        Assert.Equal(0u, c.PostJoinPushPulls);
        Assert.Throws<MemberlistException>(() => c.PostJoinPushPulls = 11);
        Assert.Equal(4096u, c.MaxBroadcastOrigins);
        c.MaxBroadcastOrigins = 16;
        Assert.Equal(16u, c.MaxBroadcastOrigins);
        Assert.Throws<MemberlistException>(() => c.MaxBroadcastOrigins = 0);
        Assert.Equal(256u, c.MaxRepairBroadcasts);
        c.MaxRepairBroadcasts = 0;
        Assert.Equal(0u, c.MaxRepairBroadcasts);
        Assert.Throws<MemberlistException>(() => c.MaxRepairBroadcasts = 4097);
        // The resource bounds: default, round trip, and the value just below the range refused.
        var bounds = new (string Name, Func<uint> Get, Action<uint> Set, uint Default, uint Good, uint Low)[]
        {
            ("MaxInboundConnections", () => c.MaxInboundConnections, v => c.MaxInboundConnections = v, 512, 8, 0),
            ("MaxQueuedCallbacks", () => c.MaxQueuedCallbacks, v => c.MaxQueuedCallbacks = v, 65536, 16, 0),
            ("MaxQueuedLogLines", () => c.MaxQueuedLogLines, v => c.MaxQueuedLogLines = v, 1024, 16, 0),
            ("MaxRepliesPerPacket", () => c.MaxRepliesPerPacket, v => c.MaxRepliesPerPacket = v, 4, 1, 0),
            ("MaxQueuedBroadcasts", () => c.MaxQueuedBroadcasts, v => c.MaxQueuedBroadcasts = v, 4096, 16, 0),
            ("MaxQueuedBroadcastBytes", () => c.MaxQueuedBroadcastBytes, v => c.MaxQueuedBroadcastBytes = v, 4194304, 65536, 65535),
            ("MaxInboundConnectionsPerSource", () => c.MaxInboundConnectionsPerSource, v => c.MaxInboundConnectionsPerSource = v, 32, 4, 0),
            ("MaxInboundStreamBytes", () => c.MaxInboundStreamBytes, v => c.MaxInboundStreamBytes = v, 64u << 20, 1u << 20, 1023),
            ("MaxReconnectMembers", () => c.MaxReconnectMembers, v => c.MaxReconnectMembers = v, 1024, 8, 0),
        };
        foreach (var b in bounds)
        {
            Assert.True(b.Default == b.Get(), $"{b.Name} default: {b.Get()}");
            b.Set(b.Good);
            Assert.True(b.Good == b.Get(), $"{b.Name} round trip: {b.Get()}");
            var e = Assert.Throws<MemberlistException>(() => b.Set(b.Low));
            Assert.Equal(MemberlistStatus.Invalid, e.Status);
            Assert.True(b.Good == b.Get(), $"{b.Name} kept after the refusal: {b.Get()}");
        }
        // Reconnection: on by default, settable, off with zero.
        Assert.Equal(TimeSpan.FromSeconds(30), c.ReconnectInterval);
        Assert.Equal(TimeSpan.FromDays(1), c.ReconnectTimeout);
        Assert.True(c.ReconnectSeeds);
        c.ReconnectInterval = TimeSpan.Zero;
        c.ReconnectTimeout = TimeSpan.FromMinutes(1);
        c.ReconnectSeeds = false;
        Assert.Equal(TimeSpan.Zero, c.ReconnectInterval);
        Assert.Equal(TimeSpan.FromMinutes(1), c.ReconnectTimeout);
        Assert.False(c.ReconnectSeeds);
        // The wire format: native by default, hashicorp reads back, anything else is refused.
        Assert.Equal(WireFormat.Native, c.WireFormat);
        c.WireFormat = WireFormat.Hashicorp;
        Assert.Equal(WireFormat.Hashicorp, c.WireFormat);
        Assert.Equal(MemberlistStatus.Invalid, Assert.Throws<MemberlistException>(() => c.WireFormat = (WireFormat)2).Status);
        Assert.Throws<MemberlistException>(() => c.ReconnectTimeout = TimeSpan.FromHours(25));
        c.AddAllowedCidr("127.0.0.0/8");
        Assert.Equal("lbl", c.Label);
        Assert.False(c.GossipVerifyIncoming);
        Assert.True(c.GossipVerifyOutgoing);
        Assert.False(c.EnableCompression || c.EnableChecksum);
        Assert.Equal(4096u, c.MaxUserMsgSize);
        Assert.Equal(1u, c.AllowedCidrCount);
        Assert.Equal(MemberlistStatus.Invalid, Assert.Throws<MemberlistException>(() => c.AddKey(new byte[7])).Status);
        Assert.Throws<MemberlistException>(() => c.AddAllowedCidr("not a cidr"));
    }
}

public class BroadcastQueueTests
{
    [Fact]
    public void LimitsReplacesAndReports()
    {
        var outcomes = new List<string>();
        Action<BroadcastOutcome> Record(string tag) => o => outcomes.Add($"{tag}:{o}");
        var q = new BroadcastQueue(2);
        q.Push("k", "v1"u8.ToArray(), Record("v1"));
        q.Push("k", "v2"u8.ToArray(), Record("v2"));
        q.Push(null, "other"u8.ToArray(), Record("other"));
        Assert.Equal(2, q.Count);
        Assert.Equal(["v1:Replaced"], outcomes);
        // n = 1: each message is handed out 2 * ceil(log10(2)) = 2 times.
        var seen = new Dictionary<string, int>();
        for (int i = 0; i < 5; i++)
            foreach (var m in q.Get(2, 1400))
                seen[System.Text.Encoding.UTF8.GetString(m)] = seen.GetValueOrDefault(System.Text.Encoding.UTF8.GetString(m)) + 1;
        Assert.Equal(2, seen["v2"]);
        Assert.Equal(2, seen["other"]);
        Assert.Equal(0, q.Count);
        Assert.Contains("v2:Delivered", outcomes);
        q.Push(null, "left"u8.ToArray(), Record("left"));
        GC.Collect(); // the done delegate lives in a GCHandle, not only in this frame
        q.Dispose();
        Assert.Equal("left:Dropped", outcomes[^1]);
    }
}

public class AdmissionTests
{
    private sealed class BanAlive : IAliveDelegate
    {
        public string? NotifyAlive(Node peer) => peer.Name.StartsWith("cs-alive-banned") ? "banned" : null;
    }

    private sealed class Conflicts : IConflictDelegate
    {
        public readonly ConcurrentQueue<(string Existing, string Other)> Pairs = new();
        public void NotifyConflict(Node existing, Node other) => Pairs.Enqueue((existing.Address, other.Address));
    }

    private static bool Lists(Memberlist m, string name) => m.Members().Any(n => n.Name == name);

    [Fact]
    public void AliveVetoKeepsANodeOut()
    {
        using var sc = FastConfig("cs-alive-seed");
        using var seed = Memberlist.Create(sc, new MemberlistDelegates { Alive = new BanAlive() });
        using var banned = Create("cs-alive-banned");
        using var good = Create("cs-alive-good");
        var addr = seed.LocalNode.Address;
        try { banned.Join(addr); } catch (MemberlistException) { } // the seed refuses its alive message
        good.Join(addr);
        WaitFor("good node at the seed", () => Lists(seed, "cs-alive-good"));
        Assert.False(Lists(seed, "cs-alive-banned"), "the seed lists the banned node");
    }

    [Fact]
    public void ConflictingNameIsReportedAndIgnored()
    {
        var rec = new Conflicts();
        using var sc = FastConfig("cs-conflict-seed");
        using var seed = Memberlist.Create(sc, new MemberlistDelegates { Conflict = rec });
        var addr = seed.LocalNode.Address;
        using var first = Create("cs-conflict-dup");
        first.Join(addr);
        WaitFor("first dup at the seed", () => seed.NumMembers == 2);
        using var second = Create("cs-conflict-dup");
        try { second.Join(addr); } catch (MemberlistException) { }
        var (a1, a2) = (first.LocalNode.Address, second.LocalNode.Address);
        WaitFor("conflict reported", () => rec.Pairs.Any(p => p.Existing == a1 && p.Other == a2));
        Assert.All(seed.Members().Where(n => n.Name == "cs-conflict-dup"), n => Assert.Equal(a1, n.Address));
    }
}
