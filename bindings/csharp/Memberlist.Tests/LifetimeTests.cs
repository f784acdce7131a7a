using System.Reflection;
using System.Runtime.CompilerServices;
using LibMemberlist.Interop;
using static LibMemberlist.Tests.ClusterTests;

namespace LibMemberlist.Tests;

/// <summary>Lifetime of a memberlist as seen from C#: rooted while it runs, freed off the
/// finalizer thread, no handle leaked by a failed create, argument and disposal errors.</summary>
public class LifetimeTests
{
    private static void CollectFully()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }

    /// <summary>Creates a node joined to <paramref name="seed"/> and keeps no reference to it.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference<Memberlist> Unreferenced(string name, string seed, bool shutdown)
    {
        var m = Create(name);
        m.Join(seed);
        if (shutdown)
            m.Shutdown();
        return new WeakReference<Memberlist>(m);
    }

    [Fact]
    public void RunningNodeIsNotCollectedWhenUnreferenced()
    {
        using var peer = Create("cs-rooted-peer");
        var weak = Unreferenced("cs-rooted", peer.LocalNode.Address, shutdown: false);
        try
        {
            CollectFully();
            Assert.True(weak.TryGetTarget(out _), "a running node was collected");
            // It still answers (a ping may time out on a loaded machine: retried; a finalized
            // node would never answer).
            WaitFor("an answer to a ping", () =>
            {
                try { peer.Ping("cs-rooted"); return true; }
                catch (MemberlistException e) when (e.Status == MemberlistStatus.Timeout) { return false; }
            });
            Assert.Equal(2, peer.NumMembers);
        }
        finally
        {
            if (weak.TryGetTarget(out var m))
                m.Dispose();
        }
    }

    /// <summary>The finalizer thread's managed id, learned from an object finalized there.</summary>
    private sealed class FinalizerProbe
    {
        public static int ThreadId;
        ~FinalizerProbe() => Volatile.Write(ref ThreadId, Environment.CurrentManagedThreadId);

        [MethodImpl(MethodImplOptions.NoInlining)]
        public static void Drop() => _ = new FinalizerProbe();
    }

    [Fact]
    public void ShutDownNodeIsCollectedAndFreedOffTheFinalizerThread()
    {
        lock (GcStressTests.LiveLock)
        {
            int live = Volatile.Read(ref CallbackState.Live), rooted = Volatile.Read(ref Memberlist.Rooted);
            using var peer = Create("cs-unrooted-peer");
            var weak = Unreferenced("cs-unrooted", peer.LocalNode.Address, shutdown: true);
            Assert.Equal(rooted + 1, Volatile.Read(ref Memberlist.Rooted)); // the peer
            FinalizerProbe.Drop();
            CollectFully();
            Assert.False(weak.TryGetTarget(out _), "a shut-down, unreferenced node was not collected");
            Assert.NotEqual(0, Volatile.Read(ref FinalizerProbe.ThreadId));
            // The finalizer hands the destroy to the thread pool.
            WaitFor("the finalized node freed", () => Volatile.Read(ref CallbackState.Live) == live + 1);
            Assert.NotEqual(FinalizerProbe.ThreadId, Volatile.Read(ref CallbackState.LastFreeThread));
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void DropQueueWithAMessage(Action<BroadcastOutcome> done)
    {
        var q = new BroadcastQueue(1);
        q.Push(null, [1], done);
    }

    [Fact]
    public void UndisposedBroadcastQueueRunsItsCallbacksOffTheFinalizerThread()
    {
        int thread = 0;
        BroadcastOutcome? outcome = null;
        DropQueueWithAMessage(o =>
        {
            outcome = o;
            Volatile.Write(ref thread, Environment.CurrentManagedThreadId);
        });
        FinalizerProbe.Drop();
        CollectFully();
        WaitFor("the dropped message's callback", () => Volatile.Read(ref thread) != 0);
        Assert.Equal(BroadcastOutcome.Dropped, outcome);
        Assert.NotEqual(0, Volatile.Read(ref FinalizerProbe.ThreadId));
        Assert.NotEqual(FinalizerProbe.ThreadId, thread);
    }

    [Fact]
    public void CreateWithADisposedConfigOrRuntimeLeaksNoHandle()
    {
        lock (GcStressTests.LiveLock)
        {
            int live = Volatile.Read(ref CallbackState.Live), rooted = Volatile.Read(ref Memberlist.Rooted);
            var config = FastConfig("cs-disposed-config");
            config.Dispose();
            Assert.Throws<ObjectDisposedException>(() => Memberlist.Create(config, new ClusterTests.Recorder()));
            using var good = FastConfig("cs-disposed-runtime");
            var runtime = new MemberlistRuntime(1);
            runtime.Dispose();
            Assert.Throws<ObjectDisposedException>(() => Memberlist.Create(good, runtime: runtime));
            Assert.Equal(live, Volatile.Read(ref CallbackState.Live));
            Assert.Equal(rooted, Volatile.Read(ref Memberlist.Rooted));
        }
    }

    /// <summary>One create/dispose cycle with every hook installed, a broadcast queued and a
    /// BroadcastQueue message pending; returns weak references to everything the cycle handed
    /// to the binding.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference[] Cycle(int i)
    {
        var hooks = new AppDataTests.Hooks($"cs-cycle-{i}");
        var outcomes = new List<BroadcastOutcome>();
        Action<BroadcastOutcome> done = outcomes.Add; // a new delegate per cycle (a lambda without captures is cached)
        var m = AppDataTests.CreateWith(hooks, null, (_, _, _) => { });
        m.QueueBroadcast(null, [1, 2, 3]);
        var q = new BroadcastQueue(1);
        q.Push(null, [4], done);
        q.Dispose();
        m.Dispose();
        return [new(m), new(hooks), new(done)];
    }

    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Issue 20.7: RSS grew 9.2 MB over 500 cycles. Measured, that is the runtime
    /// warming up (code pages, JIT, the GC's allocation budget) and levels off; this counts what
    /// a leak would leave behind instead: GCHandles, live objects, descriptors.</summary>
    [Fact]
    public void CreateDisposeCyclesLeakNothing()
    {
        lock (GcStressTests.LiveLock)
        {
            const int cycles = 200;
            Cycle(-1); // first use: the default runtime, lazily opened descriptors
            CollectFully();
            int live = Volatile.Read(ref CallbackState.Live), rooted = Volatile.Read(ref Memberlist.Rooted);
            int fds = OpenDescriptors();
            var weak = new List<WeakReference>();
            for (int i = 0; i < cycles; i++)
                weak.AddRange(Cycle(i));
            CollectFully();
            Assert.Equal(live, Volatile.Read(ref CallbackState.Live));
            Assert.Equal(rooted, Volatile.Read(ref Memberlist.Rooted));
            Assert.Equal([], weak.Where(w => w.IsAlive).Select(w => w.Target?.GetType().Name).Distinct());
            // A few descriptors of the runtime's own may open meanwhile; one per cycle would be 200.
            Assert.InRange(OpenDescriptors(), 0, fds + 8);
        }
    }

    // ---- every public member, through reflection ----

    private static readonly NullabilityInfoContext Nullability = new();

    private static readonly Type[] Handles = [typeof(Memberlist), typeof(MemberlistConfig), typeof(BroadcastQueue)];

    /// <summary>A valid non-null argument of type <paramref name="t"/> (null for hooks, which are optional).</summary>
    private static object? Dummy(Type t, List<IDisposable> owned)
    {
        if (t == typeof(string)) return "127.0.0.1:1";
        if (t == typeof(string[])) return new[] { "127.0.0.1:1" };
        if (t == typeof(byte[])) return new byte[16];
        if (t == typeof(TimeSpan)) return TimeSpan.FromMilliseconds(1);
        if (t == typeof(MemberlistConfig))
        {
            var c = FastConfig("cs-dummy");
            owned.Add(c);
            return c;
        }
        if (t == typeof(MemberlistDelegates)) return new MemberlistDelegates();
        if (t.IsValueType) return Activator.CreateInstance(t);
        return null;
    }

    private static IEnumerable<MethodInfo> PublicMethods(Type t) =>
        t.GetMethods(BindingFlags.Public | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly)
            .Where(m => !m.Name.StartsWith("add_") && !m.Name.StartsWith("remove_"));

    private static Exception? Invoke(MethodInfo m, object? target, object?[] args)
    {
        try
        {
            m.Invoke(target, args);
            return null;
        }
        catch (TargetInvocationException e)
        {
            return e.InnerException;
        }
    }

    [Fact]
    public void NullArgumentsThrowArgumentNullException()
    {
        var owned = new List<IDisposable>();
        try
        {
            var node = Create("cs-nulls");
            owned.Add(node);
            var config = FastConfig("cs-nulls-config");
            owned.Add(config);
            var queue = new BroadcastQueue(1);
            owned.Add(queue);
            var targets = new Dictionary<Type, object> { [typeof(Memberlist)] = node, [typeof(MemberlistConfig)] = config, [typeof(BroadcastQueue)] = queue };

            var checkedParams = new List<string>();
            var wrong = new List<string>();
            foreach (var type in Handles)
                foreach (var m in PublicMethods(type))
                {
                    var ps = m.GetParameters();
                    for (int i = 0; i < ps.Length; i++)
                    {
                        if (ps[i].ParameterType.IsValueType ||
                            Nullability.Create(ps[i]).WriteState != NullabilityState.NotNull)
                            continue;
                        var args = ps.Select(p => Dummy(p.ParameterType, owned)).ToArray();
                        args[i] = null;
                        var what = $"{type.Name}.{m.Name}({ps[i].Name})";
                        checkedParams.Add(what);
                        var e = Invoke(m, m.IsStatic ? null : targets[type], args);
                        if (e is not ArgumentNullException ane || ane.ParamName != ps[i].Name)
                            wrong.Add($"{what}: {e?.GetType().Name ?? "no exception"}");
                    }
                }
            Assert.Empty(wrong);
            // The reflection found what it must (it cannot pass by finding nothing).
            Assert.Superset(new HashSet<string>
            {
                "Memberlist.Create(config)", "Memberlist.Create(delegates)", "Memberlist.Join(addresses)",
                "Memberlist.Ping(nodeName)", "Memberlist.SetMeta(meta)", "Memberlist.SendBestEffort(nodeName)",
                "Memberlist.SendBestEffort(message)", "Memberlist.SendReliable(message)",
                "Memberlist.SendToAddress(address)", "Memberlist.QueueBroadcast(message)",
                "Memberlist.AddKey(key)", "Memberlist.UseKey(key)", "Memberlist.RemoveKey(key)",
                "MemberlistConfig.set_Name(value)", "MemberlistConfig.set_Meta(value)",
                "MemberlistConfig.set_Label(value)", "MemberlistConfig.AddKey(key)",
                "MemberlistConfig.AddAllowedCidr(cidr)", "MemberlistConfig.DisableTcpPingsForNode(name)",
                "BroadcastQueue.Push(message)",
            }, checkedParams.ToHashSet());

            var element = Assert.Throws<ArgumentException>(() => node.Join("127.0.0.1:1", null!));
            Assert.Equal("addresses", element.ParamName);
            // Nothing was half done: the node is intact and alone.
            Assert.Equal(1, node.NumMembers);
        }
        finally
        {
            foreach (var d in owned)
                d.Dispose();
        }
    }

    [Fact]
    public void EveryCallAfterDisposeThrowsObjectDisposed()
    {
        var owned = new List<IDisposable>();
        try
        {
            var node = Create("cs-disposed");
            var config = FastConfig("cs-disposed-config2");
            var queue = new BroadcastQueue(1);
            var targets = new Dictionary<Type, IDisposable> { [typeof(Memberlist)] = node, [typeof(MemberlistConfig)] = config, [typeof(BroadcastQueue)] = queue };
            foreach (var t in targets.Values)
                t.Dispose();

            var called = new List<string>();
            var wrong = new List<string>();
            foreach (var type in Handles)
                foreach (var m in PublicMethods(type).Where(m => !m.IsStatic && m.Name != "Dispose"))
                {
                    var args = m.GetParameters().Select(p => Dummy(p.ParameterType, owned)).ToArray();
                    called.Add($"{type.Name}.{m.Name}");
                    var e = Invoke(m, targets[type], args);
                    if (e is not ObjectDisposedException)
                        wrong.Add($"{type.Name}.{m.Name}: {e?.GetType().Name ?? "no exception"}");
                }
            Assert.Empty(wrong);
            Assert.Superset(new HashSet<string>
            {
                "Memberlist.Join", "Memberlist.Members", "Memberlist.get_NumMembers", "Memberlist.get_LocalNode",
                "Memberlist.get_HealthScore", "Memberlist.Ping", "Memberlist.Leave", "Memberlist.Shutdown",
                "Memberlist.UpdateNode", "Memberlist.SetMeta", "Memberlist.SendBestEffort",
                "Memberlist.SendReliable", "Memberlist.SendToAddress", "Memberlist.QueueBroadcast",
                "Memberlist.get_NumQueuedBroadcasts", "Memberlist.AddKey", "Memberlist.UseKey",
                "Memberlist.RemoveKey", "Memberlist.Keys", "Memberlist.SetGossipVerify", "Memberlist.Metrics",
                "Memberlist.Prometheus", "MemberlistConfig.get_Name", "MemberlistConfig.Clone",
                "BroadcastQueue.Push", "BroadcastQueue.get_Count",
            }, called.ToHashSet());
            node.Dispose(); // still idempotent
        }
        finally
        {
            foreach (var d in owned)
                d.Dispose();
        }
    }

    [Fact]
    public void QueriesAfterShutdownAnswerFromTheLastState()
    {
        using var a = Create("cs-after-a");
        using var b = Create("cs-after-b");
        b.Join(a.LocalNode.Address);
        WaitFor("two members", () => b.NumMembers == 2);
        var key = new byte[16];
        b.AddKey(key);
        b.Shutdown();
        b.Shutdown(); // idempotent
        Assert.Equal(2, b.NumMembers);
        Assert.Equal(["cs-after-a", "cs-after-b"], b.Members().Select(n => n.Name).OrderBy(n => n, StringComparer.Ordinal));
        Assert.Equal("cs-after-b", b.LocalNode.Name);
        Assert.True(b.HealthScore >= 0);
        Assert.NotEmpty(b.Metrics());
        Assert.Equal(key, Assert.Single(b.Keys()));
        // The blocking commands the library refuses today (the rest is the library's to enforce).
        Assert.Throws<MemberlistException>(() => b.Join(a.LocalNode.Address));
        Assert.Throws<MemberlistException>(() => b.Ping("cs-after-a"));
        // Commands after shutdown fail with Closed (ML_E_CLOSED), the key changes included.
        foreach (var command in new Action[] {
                     () => b.AddKey(new byte[16]), () => b.UseKey(key), () => b.RemoveKey(key),
                     () => b.SetGossipVerify(true, true) })
            Assert.Equal(MemberlistStatus.Closed, Assert.Throws<MemberlistException>(command).Status);
    }
}
