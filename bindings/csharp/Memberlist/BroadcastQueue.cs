using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>A transmit-limited queue for hosts that build their own broadcasts (hashicorp's
/// TransmitLimitedQueue, as Serf uses): each message is handed out
/// RetransmitMult * ceil(log10(n + 1)) times, least-transmitted first. One thread at a time.
/// Dispose drops the queued messages (their done callbacks run with Dropped).</summary>
public sealed unsafe class BroadcastQueue : IDisposable
{
    private readonly BroadcastQueueHandle _handle;

    public BroadcastQueue(uint retransmitMult)
    {
        Util.CheckVersion();
        ml_broadcast_queue* q;
        Util.Check(Native.ml_broadcast_queue_create(&q, retransmitMult));
        _handle = Util.Wrap<BroadcastQueueHandle, ml_broadcast_queue>(q);
    }

    /// <summary>The cluster size used for the retransmit limit (default 1).</summary>
    public void SetNumNodes(uint n)
    {
        using var q = _handle.Use();
        Util.Check(Native.ml_broadcast_queue_set_num_nodes(q.Ptr, n));
    }

    /// <summary>Queues a message; a name replaces a queued message with that name.
    /// <paramref name="done"/> runs once with the outcome when the message leaves the queue,
    /// inside the call that removes it.</summary>
    public void Push(string? name, byte[] message, Action<BroadcastOutcome>? done = null)
    {
        ArgumentNullException.ThrowIfNull(message);
        name = Util.NoNul(name, "broadcast name");
        using var q = _handle.Use();
        // The GCHandle keeps the delegate alive until the library calls Done, which frees it.
        var handle = done is null ? default : GCHandle.Alloc(done);
        int status;
        fixed (byte* p = message)
            status = Native.ml_broadcast_queue_push(q.Ptr, name!, p, (nuint)message.Length,
                done is null ? null : &Done, done is null ? null : (void*)GCHandle.ToIntPtr(handle));
        // A refused push never calls Done (docs/abi.md, "Failed calls take nothing").
        if (status != Native.ML_OK && handle.IsAllocated)
            handle.Free();
        Util.Check(status);
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Done(void* userData, uint outcome)
    {
        try
        {
            var handle = GCHandle.FromIntPtr((IntPtr)userData);
            var done = (Action<BroadcastOutcome>)handle.Target!;
            handle.Free();
            done((BroadcastOutcome)outcome);
        }
        catch (Exception e)
        {
            Memberlist.Report(e);
        }
    }

    /// <summary>The messages that fit <paramref name="limit"/> bytes, each counted with
    /// <paramref name="overhead"/> extra bytes.</summary>
    public IReadOnlyList<byte[]> Get(int overhead, int limit)
    {
        using var q = _handle.Use();
        ml_bytes_list* list;
        Util.Check(Native.ml_broadcast_queue_get(q.Ptr, (nuint)overhead, (nuint)limit, &list));
        using var owned = Util.Wrap<BytesListHandle, ml_bytes_list>(list);
        return Util.BytesList(list);
    }

    public int Count
    {
        get { using var q = _handle.Use(); return (int)Native.ml_broadcast_queue_len(q.Ptr); }
    }

    /// <summary>Drops the most-transmitted messages until at most maxRetain remain.</summary>
    public void Prune(int maxRetain)
    {
        using var q = _handle.Use();
        Util.Check(Native.ml_broadcast_queue_prune(q.Ptr, (nuint)maxRetain));
    }

    /// <summary>Drops every message.</summary>
    public void Reset()
    {
        using var q = _handle.Use();
        Util.Check(Native.ml_broadcast_queue_reset(q.Ptr));
    }

    public void Dispose() => _handle.Dispose();
}
