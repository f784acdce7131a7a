using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>Status codes of the library (<c>ML_OK</c>, <c>ML_E_*</c>).</summary>
public enum MemberlistStatus
{
    Ok = Native.ML_OK,
    Invalid = Native.ML_E_INVALID,
    NoMemory = Native.ML_E_NOMEM,
    BufferTooSmall = Native.ML_E_BUFFER_TOO_SMALL,
    NotFound = Native.ML_E_NOT_FOUND,
    State = Native.ML_E_STATE,
    Closed = Native.ML_E_CLOSED,
    Callback = Native.ML_E_CALLBACK,
    Protocol = Native.ML_E_PROTOCOL,
    Version = Native.ML_E_VERSION,
    Timeout = Native.ML_E_TIMEOUT,
    Io = Native.ML_E_IO,
    Rejected = Native.ML_E_REJECTED,
    TooLarge = Native.ML_E_TOO_LARGE,
    Internal = Native.ML_E_INTERNAL,
}

/// <summary>A failed library call: the status and the library's detail message.</summary>
public sealed class MemberlistException : Exception
{
    internal unsafe MemberlistException(int status, string message)
        : base($"{Util.Utf8(Native.ml_status_str(status))}: {message}")
    {
        Status = (MemberlistStatus)status;
        Detail = message;
    }

    /// <summary>The status code (may be a value newer than this enum).</summary>
    public MemberlistStatus Status { get; }

    /// <summary>The library's detail message alone.</summary>
    public string Detail { get; }
}

/// <summary>State of a node (<c>ML_STATE_*</c>).</summary>
public enum NodeState : uint
{
    Alive = Native.ML_STATE_ALIVE,
    Suspect = Native.ML_STATE_SUSPECT,
    Dead = Native.ML_STATE_DEAD,
    Left = Native.ML_STATE_LEFT,
}

/// <summary>Log levels (<c>ML_LOG_*</c>).</summary>
public enum LogLevel : uint
{
    Trace = Native.ML_LOG_TRACE,
    Debug = Native.ML_LOG_DEBUG,
    Info = Native.ML_LOG_INFO,
    Warn = Native.ML_LOG_WARN,
    Error = Native.ML_LOG_ERROR,
    Off = Native.ML_LOG_OFF,
}

/// <summary>The protocol a node speaks on the wire (<c>ML_WIRE_*</c>).</summary>
public enum WireFormat : uint
{
    /// <summary>libmemberlist's own format (the default).</summary>
    Native = global::LibMemberlist.Interop.Native.ML_WIRE_NATIVE,
    /// <summary>hashicorp/memberlist 0.2.2's own protocol, to join Go memberlist clusters.</summary>
    Hashicorp = global::LibMemberlist.Interop.Native.ML_WIRE_HASHICORP,
}

/// <summary>A copy of what is known about a node.</summary>
/// <param name="Name">Unique node name.</param>
/// <param name="Address">"host:port" ("[v6]:port" for IPv6).</param>
/// <param name="Host">IP address as text.</param>
/// <param name="Port">Port.</param>
/// <param name="Meta">Metadata set in the node's config.</param>
/// <param name="State">Alive, suspect, dead or left.</param>
/// <param name="Incarnation">The node's incarnation number.</param>
/// <param name="Versions">Protocol min, max, current, delegate min, max, current.</param>
public sealed record Node(string Name, string Address, string Host, ushort Port, byte[] Meta,
    NodeState State, uint Incarnation, byte[] Versions)
{
    internal static unsafe Node FromNative(ml_node* n)
    {
        nuint len;
        byte* meta = Native.ml_node_meta(n, &len);
        var versions = new byte[6];
        fixed (byte* v = versions)
            Native.ml_node_versions(n, v);
        return new Node(Util.Utf8(Native.ml_node_name(n)), Util.Utf8(Native.ml_node_address(n)),
            Util.Utf8(Native.ml_node_host(n)), Native.ml_node_port(n), Util.Bytes(meta, len),
            StateOf(n), Native.ml_node_incarnation(n), versions);
    }

    // Cannot fail on a valid node; Dead is what it leaves on failure.
    private static unsafe NodeState StateOf(ml_node* n)
    {
        uint state = Native.ML_STATE_DEAD;
        Native.ml_node_get_state(n, &state);
        return (NodeState)state;
    }
}

/// <summary>Membership events, as hashicorp/memberlist's EventDelegate. Methods run on a
/// library thread, one at a time, in order. They may call non-blocking methods of the
/// memberlist (Members, NumMembers, LocalNode, HealthScore); Join, Ping and Leave of the same
/// memberlist throw there (Status = State). An exception thrown here is caught and reported
/// through <see cref="Memberlist.CallbackException"/>; it never reaches native code.</summary>
public interface IEventDelegate
{
    void NotifyJoin(Node node);
    void NotifyLeave(Node node);
    void NotifyUpdate(Node node);
}

/// <summary>A pool of I/O threads that several memberlists can share.</summary>
public sealed unsafe class MemberlistRuntime : IDisposable
{
    internal readonly RuntimeHandle Handle;

    /// <summary>Starts <paramref name="threads"/> I/O threads (0 = library default).</summary>
    public MemberlistRuntime(uint threads = 0)
    {
        Util.CheckVersion();
        ml_runtime* rt;
        Util.Check(Native.ml_runtime_create(&rt, threads));
        Handle = Util.Wrap<RuntimeHandle, ml_runtime>(rt);
    }

    /// <summary>Releases this reference; the pool lives on while memberlists use it.</summary>
    public void Dispose() => Handle.Dispose();
}
