namespace LibMemberlist;

/// <summary>The application's hook into gossip, as hashicorp/memberlist's Delegate. NodeMeta,
/// GetBroadcasts, LocalState and MergeRemoteState run synchronously inside the protocol on a
/// library thread: keep them quick and non-blocking; from there the queries, QueueBroadcast
/// and SendBestEffort work, while Join, Ping, Leave, UpdateNode, SetMeta and SendReliable
/// throw (Status = State). NotifyMsg is delivered like events. An exception thrown here is
/// caught and reported through <see cref="Memberlist.CallbackException"/>.</summary>
public interface IDelegate
{
    /// <summary>Metadata of the local node, at most <paramref name="limit"/> bytes; asked at
    /// create and by <see cref="Memberlist.UpdateNode"/>. Replaces the config's Meta.</summary>
    byte[] NodeMeta(int limit);
    /// <summary>A user message arrived (best effort, reliable or to an address).</summary>
    void NotifyMsg(byte[] message);
    /// <summary>Messages to piggyback on a packet; each costs <paramref name="overhead"/> bytes
    /// more than its length; those past <paramref name="limit"/> are dropped.</summary>
    IEnumerable<byte[]> GetBroadcasts(int overhead, int limit);
    /// <summary>State sent in a push/pull (join: while joining).</summary>
    byte[] LocalState(bool join);
    /// <summary>State a peer sent in a push/pull.</summary>
    void MergeRemoteState(byte[] state, bool join);
}

/// <summary>May veto a join: a non-null reason keeps the peer's nodes out and Join throws
/// (Status = Rejected). An exception vetoes too.</summary>
public interface IMergeDelegate
{
    string? NotifyMerge(IReadOnlyList<Node> peers);
}

/// <summary>May keep a node out: a non-null reason refuses its alive message.</summary>
public interface IAliveDelegate
{
    string? NotifyAlive(Node peer);
}

/// <summary>Hears of a node claiming a known name from another address (it was ignored).</summary>
public interface IConflictDelegate
{
    void NotifyConflict(Node existing, Node other);
}

/// <summary>Attaches a payload to acks and hears of completed probes.</summary>
public interface IPingDelegate
{
    byte[] AckPayload();
    void NotifyPingComplete(Node other, TimeSpan rtt, byte[] payload);
}

/// <summary>Receives the broadcasts queued with <see cref="Memberlist.QueueBroadcast"/>
/// (each once per node) and the outcome of this node's own.</summary>
public interface IBroadcastDelegate
{
    void NotifyBroadcast(string origin, string name, byte[] message);
    void NotifyBroadcastDone(ulong id, BroadcastOutcome outcome);
}

/// <summary>How a queued broadcast ended.</summary>
public enum BroadcastOutcome : uint
{
    /// <summary>Fully retransmitted.</summary>
    Delivered = Interop.Native.ML_BROADCAST_DELIVERED,
    /// <summary>A newer broadcast with the same name took its place.</summary>
    Replaced = Interop.Native.ML_BROADCAST_REPLACED,
    /// <summary>Pruned, reset, or the memberlist shut down first.</summary>
    Dropped = Interop.Native.ML_BROADCAST_DROPPED,
    /// <summary>Fully retransmitted, then kept for repair until its horizon passed: every
    /// member that could reach a node holding it for a push/pull meanwhile has it
    /// (<see cref="MemberlistConfig.MaxRepairBroadcasts"/>).</summary>
    Settled = Interop.Native.ML_BROADCAST_SETTLED,
}

/// <summary>Kind of a metric.</summary>
public enum MetricKind : uint
{
    Counter = Interop.Native.ML_METRIC_COUNTER,
    Gauge = Interop.Native.ML_METRIC_GAUGE,
    /// <summary>Durations in milliseconds: count, sum, min, max.</summary>
    Timer = Interop.Native.ML_METRIC_TIMER,
}

/// <summary>One metric of a <see cref="Memberlist.Metrics"/> snapshot.</summary>
/// <param name="Name">As hashicorp/memberlist: "memberlist.msg.alive", ...</param>
/// <param name="Labels">Prometheus form (node_state="alive"), "" if none.</param>
/// <param name="Kind">Counter, gauge or timer.</param>
/// <param name="Value">Counter or gauge value; for timers the sum in milliseconds.</param>
/// <param name="Count">Timer: number of samples (0 otherwise).</param>
/// <param name="SumMs">Timer: sum.</param>
/// <param name="MinMs">Timer: minimum.</param>
/// <param name="MaxMs">Timer: maximum.</param>
public sealed record Metric(string Name, string Labels, MetricKind Kind, double Value, ulong Count,
    double SumMs, double MinMs, double MaxMs);

/// <summary>Every host hook of a memberlist; each may be null (a null hook is not installed
/// and costs nothing). Kept alive by the memberlist until the library's last callback.</summary>
public sealed class MemberlistDelegates
{
    public IEventDelegate? Events { get; init; }
    public Action<LogLevel, string>? Log { get; init; }
    public IDelegate? Delegate { get; init; }
    public IMergeDelegate? Merge { get; init; }
    public IAliveDelegate? Alive { get; init; }
    public IConflictDelegate? Conflict { get; init; }
    public IPingDelegate? Ping { get; init; }
    public IBroadcastDelegate? Broadcasts { get; init; }
    /// <summary>Every metric sample as it is recorded (name, kind, value; timers in ms).</summary>
    public Action<string, MetricKind, double>? Metrics { get; init; }
    /// <summary>A transport of the application's (TLS, TCP only, ...) instead of the library's
    /// own UDP and TCP sockets (<see cref="ITransport"/>; <see cref="TlsTransport"/> is one).
    /// The config's bind address and port are then not used.</summary>
    public ITransport? Transport { get; init; }
}
