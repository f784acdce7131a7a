using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>One cluster member. Every method may be called from any thread, concurrently.
/// <para>A running node stays alive like a running <see cref="Thread"/>: it is not collected
/// when the last reference to it is dropped, and keeps answering its peers until
/// <see cref="Shutdown"/> or <see cref="Dispose"/> (keep a reference to be able to call them).
/// After Shutdown it is an ordinary object again: the finalizer frees a node that was shut
/// down but not disposed.</para>
/// <para>After <see cref="Shutdown"/> the queries (<see cref="Members"/>, <see cref="NumMembers"/>,
/// <see cref="LocalNode"/>, <see cref="HealthScore"/>, <see cref="Metrics"/>, <see cref="Keys"/>,
/// ...) answer from the last state and the commands (Join, Ping, Leave, UpdateNode, SetMeta, the
/// Send methods, QueueBroadcast, the key changes, SetGossipVerify) throw
/// <see cref="MemberlistException"/>. After <see cref="Dispose"/> every member but Dispose
/// throws <see cref="ObjectDisposedException"/>.</para>
/// <para>Dispose shuts it down without leaving (peers detect a failure; call <see cref="Leave"/>
/// first for a graceful exit) and frees it once running callbacks have returned. A null
/// argument where none is allowed throws <see cref="ArgumentNullException"/>.</para></summary>
public sealed unsafe partial class Memberlist : IDisposable
{
    private readonly MemberlistHandle _handle;

    /// <summary>A strong GCHandle to this object while the node runs (zero once released).</summary>
    private IntPtr _root;

    /// <summary>Memberlists rooted because they run (checked by the tests).</summary>
    internal static int Rooted;

    private Memberlist(MemberlistHandle handle)
    {
        _handle = handle;
        _root = GCHandle.ToIntPtr(GCHandle.Alloc(this));
        Interlocked.Increment(ref Rooted);
    }

    /// <summary>Lets the GC collect this object once unreferenced (the node has stopped).</summary>
    private void Unroot()
    {
        var root = Interlocked.Exchange(ref _root, IntPtr.Zero);
        if (root == IntPtr.Zero)
            return;
        GCHandle.FromIntPtr(root).Free();
        Interlocked.Decrement(ref Rooted);
    }

    /// <summary>Receives exceptions thrown by host callbacks (they are caught before they can
    /// reach native code). Default: written to stderr.</summary>
    public static event Action<Exception>? CallbackException;

    /// <summary>Binds the sockets, starts the protocol and fires NotifyJoin for the local node.</summary>
    /// <param name="config">Copied; may be disposed afterwards.</param>
    /// <param name="events">Membership events, or null.</param>
    /// <param name="log">Log lines at or above config.LogLevel, or null (the library then
    /// prints WARN and above to stderr).</param>
    /// <param name="runtime">Thread pool to run on; null = the process-wide default.</param>
    public static Memberlist Create(MemberlistConfig config, IEventDelegate? events = null,
        Action<LogLevel, string>? log = null, MemberlistRuntime? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        return Create(config, new MemberlistDelegates { Events = events, Log = log }, runtime);
    }

    /// <summary>Binds the sockets, starts the protocol and fires NotifyJoin for the local node,
    /// with every hook of <paramref name="delegates"/> installed. With
    /// <see cref="MemberlistDelegates.Transport"/> no socket is bound: the node advertises the
    /// transport's <see cref="ITransport.FinalAdvertiseAddress"/> and the transport is started
    /// once the node exists; if Create throws, it has called the transport's Shutdown.</summary>
    public static Memberlist Create(MemberlistConfig config, MemberlistDelegates delegates,
        MemberlistRuntime? runtime = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(delegates);
        Util.CheckVersion();
        // Everything that can throw (a disposed config or runtime) comes before the GCHandle:
        // from its allocation on, only the library frees it.
        var handle = new MemberlistHandle();
        using var cfg = config.Handle.Use();
        using var rt = RuntimeHandle.UseOrNull(runtime?.Handle);
        TransportBinding? transport = null;
        ConfigHandle? withTransport = null;
        if (delegates.Transport is not null)
        {
            // The transport goes into a copy of the config: the caller's stays as it was (and
            // may create more memberlists, each with a transport of its own).
            transport = new TransportBinding(delegates.Transport, config.TcpTimeout);
            try
            {
                var address = transport.Address(config.AdvertiseAddress, config.AdvertisePort);
                ml_config* copy;
                Util.Check(Native.ml_config_clone(cfg.Ptr, &copy));
                withTransport = Util.Wrap<ConfigHandle, ml_config>(copy);
                var t = transport.Native();
                Util.Check(Native.ml_config_set_transport(copy, &t, address));
            }
            catch
            {
                withTransport?.Dispose();
                transport.Free();
                transport.Shutdown();
                throw;
            }
        }
        // From here on only the library frees the GCHandles (user_data_free, also on failure),
        // the transport's with the callbacks'.
        var callbacks = Callbacks.Make(new CallbackState(delegates) { Transport = transport });
        ml_memberlist* ml;
        int status;
        using (var tcfg = NativeHandle<ml_config>.UseOrNull(withTransport))
            status = Native.ml_memberlist_create(&ml, rt.Ptr, tcfg.Ptr != null ? tcfg.Ptr : cfg.Ptr, &callbacks);
        withTransport?.Dispose();
        if (status != Native.ML_OK)
        {
            // Read this thread's error before the transport's Shutdown runs host code.
            var error = new MemberlistException(status, Util.Utf8(Native.ml_last_error()));
            transport?.Shutdown();
            throw error;
        }
        Marshal.InitHandle(handle, (IntPtr)ml);
        var m = new Memberlist(handle) { _transport = transport };
        if (transport is not null)
        {
            try { transport.Started(handle); }
            catch
            {
                m.Dispose();
                throw;
            }
        }
        return m;
    }

    /// <summary>The host transport, if the node has one.</summary>
    private TransportBinding? _transport;

    /// <summary>Throws for a failed call on this memberlist, with its per-handle message.</summary>
    private static void Check(ml_memberlist* ml, int status)
    {
        if (status != Native.ML_OK)
            throw new MemberlistException(status, Util.Utf8(Native.ml_memberlist_last_error(ml)));
    }

    /// <summary>Joins a cluster through existing members ("host", "host:port", "[v6]:port", a DNS
    /// name, optionally prefixed "name/"); returns how many were reached. Throws if none was.</summary>
    public int Join(params string[] addresses)
    {
        using var native = new NativeStrings(addresses, nameof(addresses), "address");
        using var ml = _handle.Use();
        uint joined;
        fixed (IntPtr* p = native.Pointers)
            Check(ml.Ptr, Native.ml_memberlist_join(ml.Ptr, (byte**)p, (nuint)native.Pointers.Length, &joined));
        return (int)joined;
    }

    /// <summary>The alive and suspect members, the local node included.</summary>
    public IReadOnlyList<Node> Members()
    {
        using var ml = _handle.Use();
        ml_node_list* raw;
        Check(ml.Ptr, Native.ml_memberlist_members(ml.Ptr, &raw));
        using var list = Util.Wrap<NodeListHandle, ml_node_list>(raw);
        var nodes = new List<Node>();
        nuint n = Native.ml_node_list_len(raw);
        for (nuint i = 0; i < n; i++)
        {
            var node = Native.ml_node_list_get(raw, i);
            if (node != null)
                nodes.Add(Node.FromNative(node));
        }
        return nodes;
    }

    /// <summary>Number of alive and suspect members.</summary>
    public int NumMembers
    {
        get
        {
            using var ml = _handle.Use();
            nuint count;
            Check(ml.Ptr, Native.ml_memberlist_get_num_members(ml.Ptr, &count));
            return (int)count;
        }
    }

    /// <summary>The local node (its port is the one actually bound).</summary>
    public Node LocalNode
    {
        get
        {
            using var ml = _handle.Use();
            ml_node* raw;
            Check(ml.Ptr, Native.ml_memberlist_local_node(ml.Ptr, &raw));
            using var node = Util.Wrap<NodeHandle, ml_node>(raw);
            return Node.FromNative(raw);
        }
    }

    /// <summary>Lifeguard health score: 0 is healthy, higher means slow to process messages.</summary>
    public int HealthScore
    {
        get
        {
            using var ml = _handle.Use();
            int score;
            Check(ml.Ptr, Native.ml_memberlist_get_health_score(ml.Ptr, &score));
            return score;
        }
    }

    /// <summary>Pings a member by name over UDP and returns the round-trip time
    /// (Status NotFound for an unknown name, Timeout without an answer).</summary>
    public TimeSpan Ping(string nodeName)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        using var ml = _handle.Use();
        ulong rttUs;
        Check(ml.Ptr, Native.ml_memberlist_ping(ml.Ptr, Util.NoNul(nodeName, "node name")!, &rttUs));
        return TimeSpan.FromMicroseconds(rttUs);
    }

    /// <summary>Broadcasts that this node leaves and waits until that propagated or the
    /// timeout passed (Status Timeout; the leave still goes on).</summary>
    public void Leave(TimeSpan timeout)
    {
        using var ml = _handle.Use();
        Check(ml.Ptr, Native.ml_memberlist_leave(ml.Ptr, Util.Millis(timeout, "timeout")));
    }

    /// <summary>Stops the sockets and timers without leaving. The queries keep answering from the last state, the commands throw; the object is no
    /// longer kept alive by the running node (see the class summary). A host transport
    /// (<see cref="MemberlistDelegates.Transport"/>) is shut down after the node. Idempotent.</summary>
    public void Shutdown()
    {
        using (var ml = _handle.Use())
            Check(ml.Ptr, Native.ml_memberlist_shutdown(ml.Ptr));
        _stopped = true; // the event pump ends once it has delivered what was kept
        _transport?.Shutdown(); // after the node: it sends nothing more
        Unroot();
    }

    // ---- metadata ----

    /// <summary>Asks IDelegate.NodeMeta again and announces the result; waits until it has
    /// propagated or the timeout passed (Status Timeout; the update still goes on).</summary>
    public void UpdateNode(TimeSpan timeout)
    {
        using var ml = _handle.Use();
        Check(ml.Ptr, Native.ml_memberlist_update_node(ml.Ptr, Util.Millis(timeout, "timeout")));
    }

    /// <summary>Sets the local metadata and announces it, waiting as <see cref="UpdateNode"/>.</summary>
    public void SetMeta(byte[] meta, TimeSpan timeout)
    {
        ArgumentNullException.ThrowIfNull(meta);
        using var ml = _handle.Use();
        fixed (byte* p = meta)
            Check(ml.Ptr, Native.ml_memberlist_set_meta(ml.Ptr, p, (nuint)meta.Length, Util.Millis(timeout, "timeout")));
    }

    // ---- user messages ----

    /// <summary>One UDP datagram to a member (Status TooLarge if it cannot fit one).</summary>
    public void SendBestEffort(string nodeName, byte[] message)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        ArgumentNullException.ThrowIfNull(message);
        using var ml = _handle.Use();
        fixed (byte* p = message)
            Check(ml.Ptr, Native.ml_memberlist_send_best_effort(ml.Ptr, Util.NoNul(nodeName, "node name")!, p, (nuint)message.Length));
    }

    /// <summary>Over a TCP stream to a member; returns once written.</summary>
    public void SendReliable(string nodeName, byte[] message)
    {
        ArgumentNullException.ThrowIfNull(nodeName);
        ArgumentNullException.ThrowIfNull(message);
        using var ml = _handle.Use();
        fixed (byte* p = message)
            Check(ml.Ptr, Native.ml_memberlist_send_reliable(ml.Ptr, Util.NoNul(nodeName, "node name")!, p, (nuint)message.Length));
    }

    /// <summary>One UDP datagram to "host:port", a member or not.</summary>
    public void SendToAddress(string address, byte[] message)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(message);
        using var ml = _handle.Use();
        fixed (byte* p = message)
            Check(ml.Ptr, Native.ml_memberlist_send_to_address(ml.Ptr, Util.NoNul(address, "address")!, p, (nuint)message.Length));
    }

    // ---- broadcasts ----

    /// <summary>Queues a broadcast every member delivers once (IBroadcastDelegate.NotifyBroadcast);
    /// a name makes a newer broadcast with that name replace the older one. Returns the id
    /// passed to NotifyBroadcastDone.</summary>
    public ulong QueueBroadcast(string? name, byte[] message)
    {
        ArgumentNullException.ThrowIfNull(message);
        using var ml = _handle.Use();
        ulong id;
        fixed (byte* p = message)
            Check(ml.Ptr, Native.ml_memberlist_queue_broadcast(ml.Ptr, Util.NoNul(name, "broadcast name")!, p, (nuint)message.Length, &id));
        return id;
    }

    /// <summary>Broadcasts this node is still retransmitting.</summary>
    public int NumQueuedBroadcasts
    {
        get
        {
            using var ml = _handle.Use();
            nuint count;
            Check(ml.Ptr, Native.ml_memberlist_get_num_queued_broadcasts(ml.Ptr, &count));
            return (int)count;
        }
    }

    // ---- keyring ----

    private delegate int KeyOp(ml_memberlist* ml, byte* key, nuint len);

    private void Key(KeyOp op, byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var ml = _handle.Use();
        fixed (byte* p = key)
            Check(ml.Ptr, op(ml.Ptr, p, (nuint)key.Length));
    }

    /// <summary>Installs a key (16, 24 or 32 bytes); the first one becomes the primary.</summary>
    public void AddKey(byte[] key) => Key(Native.ml_memberlist_keyring_add, key);
    /// <summary>Makes an installed key the primary (Status NotFound if it is not installed).</summary>
    public void UseKey(byte[] key) => Key(Native.ml_memberlist_keyring_use, key);
    /// <summary>Removes a key; removing the primary throws.</summary>
    public void RemoveKey(byte[] key) => Key(Native.ml_memberlist_keyring_remove, key);

    /// <summary>The installed keys, primary first.</summary>
    public IReadOnlyList<byte[]> Keys()
    {
        using var ml = _handle.Use();
        ml_bytes_list* list;
        Check(ml.Ptr, Native.ml_memberlist_keyring_list(ml.Ptr, &list));
        using var owned = Util.Wrap<BytesListHandle, ml_bytes_list>(list);
        return Util.BytesList(list);
    }

    /// <summary>Changes GossipVerifyIncoming / GossipVerifyOutgoing of the running node.</summary>
    public void SetGossipVerify(bool incoming, bool outgoing)
    {
        using var ml = _handle.Use();
        Check(ml.Ptr, Native.ml_memberlist_set_gossip_verify(ml.Ptr, incoming ? 1u : 0u, outgoing ? 1u : 0u));
    }

    // ---- metrics ----

    /// <summary>A snapshot of every metric.</summary>
    public IReadOnlyList<Metric> Metrics()
    {
        using var ml = _handle.Use();
        ml_metrics* snap;
        Check(ml.Ptr, Native.ml_memberlist_metrics(ml.Ptr, &snap));
        using var owned = Util.Wrap<MetricsHandle, ml_metrics>(snap);
        var result = new List<Metric>();
        nuint n = Native.ml_metrics_len(snap);
        for (nuint i = 0; i < n; i++)
        {
            ulong count;
            double sum, min, max;
            Native.ml_metrics_timer(snap, i, &count, &sum, &min, &max);
            uint kind = Native.ML_METRIC_COUNTER; // cannot fail for an index below the length
            Native.ml_metrics_get_kind(snap, i, &kind);
            result.Add(new Metric(Util.Utf8(Native.ml_metrics_name(snap, i)), Util.Utf8(Native.ml_metrics_labels(snap, i)),
                (MetricKind)kind, Native.ml_metrics_value(snap, i), count, sum, min, max));
        }
        return result;
    }

    /// <summary>Every metric in the Prometheus text exposition format.</summary>
    public string Prometheus()
    {
        using var ml = _handle.Use();
        byte* text;
        nuint len;
        Check(ml.Ptr, Native.ml_memberlist_prometheus(ml.Ptr, &text, &len));
        try { return System.Text.Encoding.UTF8.GetString(text, checked((int)len)); }
        finally { Native.ml_string_free(text); }
    }

    /// <summary>Shuts the node down (without leaving) if it runs, waits for running callbacks
    /// and frees it; from inside one of its own callbacks the freeing happens once that callback
    /// returns. A host transport is shut down after the node (once, if Shutdown did not).
    /// Idempotent.</summary>
    public void Dispose()
    {
        Unroot();
        StopEventPump();
        _handle.Dispose();
        _transport?.Shutdown();
    }

    internal static void Report(Exception e)
    {
        try
        {
            var handler = CallbackException;
            if (handler is null)
                Console.Error.WriteLine($"memberlist: exception in a callback: {e}");
            else
                handler(e);
        }
        catch
        {
            // Nothing may escape into native code, not even from the reporter.
        }
    }

    /// <summary>Benchmark support: calls the event trampoline n times from a new thread with
    /// the local node, the way the library's callback thread does; returns ns per call.</summary>
    internal double BenchEventRoundTrip(IEventDelegate events, int n)
    {
        using var ml = _handle.Use();
        ml_node* raw;
        Check(ml.Ptr, Native.ml_memberlist_local_node(ml.Ptr, &raw));
        using var nodeHandle = Util.Wrap<NodeHandle, ml_node>(raw);
        var node = (IntPtr)raw;
        var cb = Callbacks.Make(new CallbackState(new MemberlistDelegates { Events = events }));
        long ticks = 0;
        var t = new Thread(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < n; i++)
                cb.on_event(cb.user_data, Native.ML_EVENT_UPDATE, (ml_node*)node);
            ticks = sw.Elapsed.Ticks;
        });
        t.Start();
        t.Join();
        cb.user_data_free(cb.user_data);
        return ticks * 100.0 / Math.Max(n, 1); // ns per call (a TimeSpan tick is 100 ns: too coarse)
    }

    /// <summary>Benchmark support: calls the on_message trampoline n times from a new thread
    /// with a size-byte payload; returns ns per call.</summary>
    internal static double BenchMessageRoundTrip(IDelegate hooks, int size, int n)
    {
        var cb = Callbacks.Make(new CallbackState(new MemberlistDelegates { Delegate = hooks }));
        var payload = (IntPtr)NativeMemory.AllocZeroed((nuint)size + 1);
        long ticks = 0;
        var t = new Thread(() =>
        {
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int i = 0; i < n; i++)
                cb.on_message(cb.user_data, (byte*)payload, (nuint)size);
            ticks = sw.Elapsed.Ticks;
        });
        t.Start();
        t.Join();
        cb.user_data_free(cb.user_data);
        NativeMemory.Free((void*)payload);
        return ticks * 100.0 / Math.Max(n, 1); // ns per call (a TimeSpan tick is 100 ns: too coarse)
    }
}

/// <summary>What a memberlist's user_data (a GCHandle) points to.</summary>
internal sealed class CallbackState(MemberlistDelegates d)
{
    public readonly IEventDelegate? Events = d.Events;
    public readonly Action<LogLevel, string>? Log = d.Log;
    public readonly IDelegate? Delegate = d.Delegate;
    public readonly IMergeDelegate? Merge = d.Merge;
    public readonly IAliveDelegate? Alive = d.Alive;
    public readonly IConflictDelegate? Conflict = d.Conflict;
    public readonly IPingDelegate? Ping = d.Ping;
    public readonly IBroadcastDelegate? Broadcasts = d.Broadcasts;
    public readonly Action<string, MetricKind, double>? Metrics = d.Metrics;
    /// <summary>The host transport's binding, freed with this state (user_data_free comes
    /// after the library's last transport callback).</summary>
    public TransportBinding? Transport { get; init; }

    /// <summary>GCHandles not yet freed by user_data_free (checked by the tests).</summary>
    public static int Live;

    /// <summary>Managed id of the thread that ran the last user_data_free (checked by the tests:
    /// never the finalizer thread).</summary>
    public static int LastFreeThread;
}

/// <summary>The static trampolines: plain function pointers to UnmanagedCallersOnly methods, so
/// there is no delegate for the GC to collect; user state travels in a GCHandle.</summary>
internal static unsafe class Callbacks
{
    public static ml_callbacks Make(CallbackState state)
    {
        var handle = GCHandle.Alloc(state);
        Interlocked.Increment(ref CallbackState.Live);
        return new ml_callbacks
        {
            version = Native.ML_CALLBACKS_VERSION,
            user_data = (void*)GCHandle.ToIntPtr(handle),
            user_data_free = &Free,
            on_event = state.Events is null ? null : &OnEvent,
            on_log = state.Log is null ? null : &OnLog,
            node_meta = state.Delegate is null ? null : &NodeMeta,
            get_broadcasts = state.Delegate is null ? null : &GetBroadcasts,
            local_state = state.Delegate is null ? null : &LocalState,
            merge_remote_state = state.Delegate is null ? null : &MergeRemoteState,
            on_message = state.Delegate is null ? null : &OnMessage,
            notify_merge = state.Merge is null ? null : &NotifyMerge,
            notify_alive = state.Alive is null ? null : &NotifyAlive,
            ack_payload = state.Ping is null ? null : &AckPayload,
            on_ping_complete = state.Ping is null ? null : &OnPingComplete,
            on_conflict = state.Conflict is null ? null : &OnConflict,
            on_broadcast = state.Broadcasts is null ? null : &OnBroadcast,
            on_broadcast_done = state.Broadcasts is null ? null : &OnBroadcastDone,
            on_metric = state.Metrics is null ? null : &OnMetric,
        };
    }

    private static void Append(ml_buffer* output, byte[]? bytes)
    {
        if (bytes is { Length: > 0 })
            fixed (byte* p = bytes)
                Native.ml_buffer_append(output, p, (nuint)bytes.Length);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void NodeMeta(void* userData, ml_buffer* output, nuint limit)
    {
        try { Append(output, State(userData).Delegate!.NodeMeta((int)Math.Min(limit, int.MaxValue))); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void GetBroadcasts(void* userData, ml_message_sink* sink, nuint overhead, nuint limit)
    {
        try
        {
            var msgs = State(userData).Delegate!.GetBroadcasts((int)Math.Min(overhead, int.MaxValue),
                (int)Math.Min(limit, int.MaxValue));
            foreach (var m in msgs ?? [])
            {
                int st;
                fixed (byte* p = m)
                    st = Native.ml_message_sink_add(sink, p, (nuint)m.Length);
                if (st != Native.ML_OK)
                    break;
            }
        }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void LocalState(void* userData, uint join, ml_buffer* output)
    {
        try { Append(output, State(userData).Delegate!.LocalState(join != 0)); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void MergeRemoteState(void* userData, byte* data, nuint len, uint join)
    {
        try { State(userData).Delegate!.MergeRemoteState(Util.Bytes(data, len), join != 0); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMessage(void* userData, byte* data, nuint len)
    {
        try { State(userData).Delegate!.NotifyMsg(Util.Bytes(data, len)); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    /// <summary>An admission hook's answer: a reason (or an exception) vetoes.</summary>
    private static int Veto(ml_buffer* reason, Func<string?> hook)
    {
        string? why;
        try { why = hook(); }
        catch (Exception e) { Memberlist.Report(e); why = "the hook threw " + e.GetType().Name; }
        if (why is null)
            return 0;
        Append(reason, System.Text.Encoding.UTF8.GetBytes(why));
        return 1;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int NotifyMerge(void* userData, ml_node_list* peers, ml_buffer* reason)
    {
        try
        {
            return Veto(reason, () =>
            {
                var nodes = new List<Node>();
                nuint n = Native.ml_node_list_len(peers);
                for (nuint i = 0; i < n; i++)
                {
                    var node = Native.ml_node_list_get(peers, i);
                    if (node != null)
                        nodes.Add(Node.FromNative(node));
                }
                return State(userData).Merge!.NotifyMerge(nodes);
            });
        }
        catch { return 1; }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int NotifyAlive(void* userData, ml_node* peer, ml_buffer* reason)
    {
        try { return Veto(reason, () => State(userData).Alive!.NotifyAlive(Node.FromNative(peer))); }
        catch { return 1; }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void AckPayload(void* userData, ml_buffer* output)
    {
        try { Append(output, State(userData).Ping!.AckPayload()); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnPingComplete(void* userData, ml_node* node, ulong rttUs, byte* payload, nuint len)
    {
        try
        {
            if (node != null)
                State(userData).Ping!.NotifyPingComplete(Node.FromNative(node),
                    TimeSpan.FromMicroseconds(rttUs), Util.Bytes(payload, len));
        }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnConflict(void* userData, ml_node* existing, ml_node* other)
    {
        try
        {
            if (existing != null && other != null)
                State(userData).Conflict!.NotifyConflict(Node.FromNative(existing), Node.FromNative(other));
        }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnBroadcast(void* userData, byte* origin, byte* name, byte* data, nuint len)
    {
        try { State(userData).Broadcasts!.NotifyBroadcast(Util.Utf8(origin), Util.Utf8(name), Util.Bytes(data, len)); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnBroadcastDone(void* userData, ulong id, uint outcome)
    {
        try { State(userData).Broadcasts!.NotifyBroadcastDone(id, (BroadcastOutcome)outcome); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnMetric(void* userData, byte* name, uint kind, double value)
    {
        try { State(userData).Metrics!(Util.Utf8(name), (MetricKind)kind, value); }
        catch (Exception e) { Memberlist.Report(e); }
    }

    private static CallbackState State(void* userData) =>
        (CallbackState)GCHandle.FromIntPtr((IntPtr)userData).Target!;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnEvent(void* userData, uint kind, ml_node* node)
    {
        try
        {
            var events = State(userData).Events;
            if (events is null || node == null)
                return;
            var n = Node.FromNative(node);
            switch ((int)kind)
            {
                case Native.ML_EVENT_JOIN: events.NotifyJoin(n); break;
                case Native.ML_EVENT_LEAVE: events.NotifyLeave(n); break;
                case Native.ML_EVENT_UPDATE: events.NotifyUpdate(n); break;
            }
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void OnLog(void* userData, uint level, byte* msg, nuint len)
    {
        try
        {
            var log = State(userData).Log;
            if (log is not null && msg != null)
                log((LogLevel)level, System.Text.Encoding.UTF8.GetString(msg, checked((int)len)));
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Free(void* userData)
    {
        try
        {
            var handle = GCHandle.FromIntPtr((IntPtr)userData);
            ((CallbackState)handle.Target!).Transport?.Free();
            handle.Free();
            Volatile.Write(ref CallbackState.LastFreeThread, Environment.CurrentManagedThreadId);
            Interlocked.Decrement(ref CallbackState.Live);
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }
}
