using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>One cluster member. Every method may be called from any thread, concurrently.
/// Dispose shuts it down without leaving (peers detect a failure; call <see cref="Leave"/>
/// first for a graceful exit) and frees it once running callbacks have returned.</summary>
public sealed unsafe class Memberlist : IDisposable
{
    private readonly MemberlistHandle _handle;

    private Memberlist(MemberlistHandle handle) => _handle = handle;

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
        Util.CheckVersion();
        var callbacks = Callbacks.Make(new CallbackState(events, log));
        using var cfg = config.Handle.Use();
        ml_memberlist* ml;
        int status;
        if (runtime is null)
        {
            status = Native.ml_memberlist_create(&ml, null, cfg.Ptr, &callbacks);
        }
        else
        {
            using var rt = runtime.Handle.Use();
            status = Native.ml_memberlist_create(&ml, rt.Ptr, cfg.Ptr, &callbacks);
        }
        // On failure the library already called user_data_free (the GCHandle is freed).
        Util.Check(status);
        return new Memberlist(Util.Wrap<MemberlistHandle, ml_memberlist>(ml));
    }

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
        var native = new IntPtr[addresses.Length];
        try
        {
            for (int i = 0; i < addresses.Length; i++)
                native[i] = Marshal.StringToCoTaskMemUTF8(addresses[i]);
            using var ml = _handle.Use();
            uint joined;
            fixed (IntPtr* p = native)
                Check(ml.Ptr, Native.ml_memberlist_join(ml.Ptr, (byte**)p, (nuint)native.Length, &joined));
            return (int)joined;
        }
        finally
        {
            foreach (var p in native)
                Marshal.FreeCoTaskMem(p);
        }
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
        get { using var ml = _handle.Use(); return (int)Native.ml_memberlist_num_members(ml.Ptr); }
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
        get { using var ml = _handle.Use(); return Native.ml_memberlist_health_score(ml.Ptr); }
    }

    /// <summary>Pings a member by name over UDP and returns the round-trip time
    /// (Status NotFound for an unknown name, Timeout without an answer).</summary>
    public TimeSpan Ping(string nodeName)
    {
        using var ml = _handle.Use();
        ulong rttUs;
        Check(ml.Ptr, Native.ml_memberlist_ping(ml.Ptr, nodeName, &rttUs));
        return TimeSpan.FromMicroseconds(rttUs);
    }

    /// <summary>Broadcasts that this node leaves and waits until that propagated or the
    /// timeout passed (Status Timeout; the leave still goes on).</summary>
    public void Leave(TimeSpan timeout)
    {
        using var ml = _handle.Use();
        Check(ml.Ptr, Native.ml_memberlist_leave(ml.Ptr, Util.Millis(timeout, "timeout")));
    }

    /// <summary>Stops the sockets and timers without leaving. Idempotent.</summary>
    public void Shutdown()
    {
        using var ml = _handle.Use();
        Check(ml.Ptr, Native.ml_memberlist_shutdown(ml.Ptr));
    }

    public void Dispose() => _handle.Dispose();

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
    /// the local node, the way the library's callback thread does; returns the time per call.</summary>
    internal TimeSpan BenchEventRoundTrip(IEventDelegate events, int n)
    {
        using var ml = _handle.Use();
        ml_node* raw;
        Check(ml.Ptr, Native.ml_memberlist_local_node(ml.Ptr, &raw));
        using var nodeHandle = Util.Wrap<NodeHandle, ml_node>(raw);
        var node = (IntPtr)raw;
        var cb = Callbacks.Make(new CallbackState(events, null));
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
        return TimeSpan.FromTicks(ticks / Math.Max(n, 1));
    }
}

/// <summary>What a memberlist's user_data (a GCHandle) points to.</summary>
internal sealed class CallbackState(IEventDelegate? events, Action<LogLevel, string>? log)
{
    public readonly IEventDelegate? Events = events;
    public readonly Action<LogLevel, string>? Log = log;

    /// <summary>GCHandles not yet freed by user_data_free (checked by the tests).</summary>
    public static int Live;
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
        };
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
            GCHandle.FromIntPtr((IntPtr)userData).Free();
            Interlocked.Decrement(ref CallbackState.Live);
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }
}
