using System.Runtime.InteropServices;
using System.Threading.Channels;
using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>What a <see cref="MemberlistEvent"/> carries (<c>ML_EVENT_KIND_*</c>).</summary>
public enum EventKind : uint
{
    /// <summary><see cref="MemberlistEvent.Type"/> and <see cref="MemberlistEvent.Node"/>.</summary>
    Member = Native.ML_EVENT_KIND_MEMBER,
    /// <summary>A user message in <see cref="MemberlistEvent.Data"/>.</summary>
    Message = Native.ML_EVENT_KIND_MESSAGE,
    /// <summary>A broadcast: Origin, Name, Data.</summary>
    Broadcast = Native.ML_EVENT_KIND_BROADCAST,
    /// <summary>This node's broadcast Id ended with Outcome.</summary>
    BroadcastDone = Native.ML_EVENT_KIND_BROADCAST_DONE,
    /// <summary>Node (the known one) and Other (the newcomer with its name).</summary>
    Conflict = Native.ML_EVENT_KIND_CONFLICT,
    /// <summary>A log line: Level, Text.</summary>
    Log = Native.ML_EVENT_KIND_LOG,
}

/// <summary>Membership event types (<c>ML_EVENT_*</c>).</summary>
public enum NodeEventType : uint
{
    Join = Native.ML_EVENT_JOIN,
    Leave = Native.ML_EVENT_LEAVE,
    Update = Native.ML_EVENT_UPDATE,
}

/// <summary>One notification taken from the library's event queue; which properties are set
/// depends on <see cref="Kind"/>.</summary>
public sealed record MemberlistEvent(EventKind Kind)
{
    public NodeEventType Type { get; init; }
    public Node? Node { get; init; }
    public Node? Other { get; init; }
    public byte[] Data { get; init; } = [];
    public string Origin { get; init; } = "";
    public string Name { get; init; } = "";
    public ulong Id { get; init; }
    public BroadcastOutcome Outcome { get; init; }
    public LogLevel Level { get; init; }
    public string Text { get; init; } = "";

    internal static unsafe MemberlistEvent? FromNative(ml_event* e)
    {
        var kind = (EventKind)e->kind;
        return kind switch
        {
            EventKind.Member => new(kind) { Type = (NodeEventType)e->type, Node = LibMemberlist.Node.FromNative(e->node) },
            EventKind.Message => new(kind) { Data = Util.Bytes(e->data, e->len) },
            EventKind.Broadcast => new(kind)
            {
                Origin = Util.Utf8(e->origin), Name = Util.Utf8(e->name), Data = Util.Bytes(e->data, e->len),
            },
            EventKind.BroadcastDone => new(kind) { Id = e->id, Outcome = (BroadcastOutcome)e->type },
            EventKind.Conflict => new(kind)
            {
                Node = LibMemberlist.Node.FromNative(e->node), Other = LibMemberlist.Node.FromNative(e->other),
            },
            EventKind.Log => new(kind)
            {
                Level = (LogLevel)e->type,
                Text = System.Text.Encoding.UTF8.GetString(e->data, checked((int)e->len)),
            },
            _ => null, // a kind newer than this binding
        };
    }
}

/// <summary>Events without callbacks (<see cref="MemberlistConfig.EventQueue"/>).</summary>
public sealed unsafe partial class Memberlist
{
    private readonly object _eventsLock = new();
    private Channel<MemberlistEvent>? _events;
    private CancellationTokenSource? _pumpStop;
    private Thread? _pump;
    private volatile bool _stopped;

    /// <summary>Takes up to <paramref name="max"/> queued events, oldest first (empty if none);
    /// never blocks. Throws <see cref="MemberlistException"/> (Status = State) without the
    /// event queue.</summary>
    public IReadOnlyList<MemberlistEvent> PollEvents(int max = 64)
    {
        using var ml = _handle.Use(); // ObjectDisposedException first, as every call
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        return Poll(ml.Ptr, max);
    }

    private static List<MemberlistEvent> Poll(ml_memberlist* ml, int max)
    {
        ml_event_batch* batch;
        Util.Check(Native.ml_event_batch_create(&batch));
        try
        {
            nuint count;
            Check(ml, Native.ml_memberlist_poll_events(ml, batch, (nuint)max, &count));
            var list = new List<MemberlistEvent>((int)count);
            for (nuint i = 0; i < count; i++)
            {
                var ev = MemberlistEvent.FromNative(Native.ml_event_batch_get(batch, i));
                if (ev is not null)
                    list.Add(ev);
            }
            return list;
        }
        finally
        {
            Native.ml_event_batch_free(batch);
        }
    }

    /// <summary>A descriptor readable while events are queued (an eventfd owned by the
    /// memberlist: do not read or close it).</summary>
    public int EventFd
    {
        get
        {
            using var ml = _handle.Use();
            int fd;
            Check(ml.Ptr, Native.ml_memberlist_event_fd(ml.Ptr, &fd));
            return fd;
        }
    }

    /// <summary>Events queued now, and those dropped so far because the queue was full
    /// (<see cref="MemberlistConfig.MaxQueuedCallbacks"/>).</summary>
    public (int Queued, ulong Dropped) EventStats
    {
        get
        {
            using var ml = _handle.Use();
            nuint queued;
            ulong dropped;
            Check(ml.Ptr, Native.ml_memberlist_get_event_stats(ml.Ptr, &queued, &dropped));
            return ((int)queued, dropped);
        }
    }

    /// <summary>The events as a channel. The first access starts a thread of the binding that
    /// waits on <see cref="EventFd"/> (no thread-pool thread is blocked), takes the events in
    /// batches and writes them in order. A full channel (1024 events) holds up only that
    /// thread: the library keeps queueing up to its bound and counts what it drops
    /// (<see cref="EventStats"/>). The channel completes after <see cref="Dispose"/>, or after
    /// <see cref="Shutdown"/> once the events that shutdown kept are written.</summary>
    public ChannelReader<MemberlistEvent> Events
    {
        get
        {
            lock (_eventsLock)
            {
                if (_events is null)
                {
                    _ = EventFd; // throws without the event queue
                    _events = Channel.CreateBounded<MemberlistEvent>(
                        new BoundedChannelOptions(1024) { SingleWriter = true, FullMode = BoundedChannelFullMode.Wait });
                    _pumpStop = new CancellationTokenSource();
                    _pump = new Thread(Pump) { IsBackground = true, Name = "memberlist events" };
                    _pump.Start((_events.Writer, _pumpStop.Token));
                }
                return _events.Reader;
            }
        }
    }

    /// <summary>The events as an async stream (<see cref="Events"/>' ReadAllAsync).</summary>
    public IAsyncEnumerable<MemberlistEvent> ReadEventsAsync(CancellationToken cancellationToken = default) =>
        Events.ReadAllAsync(cancellationToken);

    /// <summary>Dispose: stops the pump and waits for it (at most its 100 ms wait), so that the
    /// native memberlist is freed by Dispose itself, not later on the pump's thread.</summary>
    private void StopEventPump()
    {
        Thread? pump;
        lock (_eventsLock)
        {
            _pumpStop?.Cancel();
            pump = _pump;
        }
        if (pump is not null && pump != Thread.CurrentThread)
            pump.Join();
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc.so.6", EntryPoint = "poll")]
    private static extern int SysPoll(PollFd* fds, nuint nfds, int timeout);

    private const short PollIn = 1;

    private void Pump(object? arg)
    {
        var (writer, stop) = ((ChannelWriter<MemberlistEvent>, CancellationToken))arg!;
        try
        {
            while (!stop.IsCancellationRequested)
            {
                List<MemberlistEvent> batch;
                // The lease keeps the memberlist (and its fd) alive across the wait; the wait is
                // bounded so that a Dispose is noticed soon.
                using (var ml = _handle.Use())
                {
                    int fd;
                    Check(ml.Ptr, Native.ml_memberlist_event_fd(ml.Ptr, &fd));
                    var p = new PollFd { Fd = fd, Events = PollIn };
                    SysPoll(&p, 1, 100);
                    batch = Poll(ml.Ptr, 64);
                }
                foreach (var ev in batch)
                    while (!writer.TryWrite(ev))
                        writer.WaitToWriteAsync(stop).AsTask().GetAwaiter().GetResult();
                if (batch.Count == 0 && _stopped)
                    return; // shut down and drained: nothing more will come
            }
        }
        catch (ObjectDisposedException) { }
        catch (OperationCanceledException) { }
        catch (Exception e) { Report(e); }
        finally
        {
            writer.TryComplete();
        }
    }
}
