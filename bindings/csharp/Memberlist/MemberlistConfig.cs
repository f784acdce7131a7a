using LibMemberlist.Interop;

namespace LibMemberlist;

/// <summary>A configuration starting from one of the reference's presets. Setting a property
/// calls the library's setter, which throws <see cref="MemberlistException"/> (Invalid,
/// TooLarge) naming the knob for a refused value, and ArgumentNullException for null. A config is a plain value used by one thread
/// at a time; <c>Memberlist.Create</c> copies it.</summary>
public sealed unsafe class MemberlistConfig : IDisposable
{
    internal readonly ConfigHandle Handle;

    private MemberlistConfig(ConfigHandle handle) => Handle = handle;

    private delegate int Ctor(ml_config** output);

    private static MemberlistConfig Make(Ctor ctor)
    {
        Util.CheckVersion();
        ml_config* cfg;
        Util.Check(ctor(&cfg));
        return new MemberlistConfig(Util.Wrap<ConfigHandle, ml_config>(cfg));
    }

    /// <summary>hashicorp/memberlist's DefaultLANConfig.</summary>
    public static MemberlistConfig Lan() => Make(o => Native.ml_config_new_lan(o));
    /// <summary>DefaultWANConfig.</summary>
    public static MemberlistConfig Wan() => Make(o => Native.ml_config_new_wan(o));
    /// <summary>DefaultLocalConfig: loopback, fast timers.</summary>
    public static MemberlistConfig Local() => Make(o => Native.ml_config_new_local(o));

    /// <summary>An independent copy.</summary>
    public MemberlistConfig Clone()
    {
        using var c = Handle.Use();
        ml_config* copy;
        Util.Check(Native.ml_config_clone(c.Ptr, &copy));
        return new MemberlistConfig(Util.Wrap<ConfigHandle, ml_config>(copy));
    }

    public void Dispose() => Handle.Dispose();

    private delegate int Setter<TV>(ml_config* c, TV v);
    private delegate TV Getter<TV>(ml_config* c);

    private void Set<TV>(Setter<TV> set, TV value)
    {
        using var c = Handle.Use();
        Util.Check(set(c.Ptr, value));
    }

    private TV Get<TV>(Getter<TV> get)
    {
        using var c = Handle.Use();
        return get(c.Ptr);
    }

    private static TimeSpan Ms(uint ms) => TimeSpan.FromMilliseconds(ms);

    /// <summary>Unique node name (1..255 bytes; default: the host name).</summary>
    public string Name
    {
        get => Get(c => Util.Utf8(Native.ml_config_get_name(c)));
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Set((c, v) => Native.ml_config_set_name(c, v), Util.NoNul(value, "Name")!);
        }
    }

    /// <summary>IPv4 or IPv6 literal to bind UDP and TCP to.</summary>
    public string BindAddress
    {
        get => Get(c => Util.Utf8(Native.ml_config_get_bind_addr(c)));
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Set((c, v) => Native.ml_config_set_bind_addr(c, v), Util.NoNul(value, "BindAddr")!);
        }
    }

    /// <summary>Port for UDP and TCP; 0 lets the system pick one.</summary>
    public ushort BindPort
    {
        get => Get(Native.ml_config_get_bind_port);
        set => Set(Native.ml_config_set_bind_port, value);
    }

    /// <summary>Address peers should use ("" = derived from the bind address).</summary>
    public string AdvertiseAddress
    {
        get => Get(c => Util.Utf8(Native.ml_config_get_advertise_addr(c)));
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Set((c, v) => Native.ml_config_set_advertise_addr(c, v), Util.NoNul(value, "AdvertiseAddr")!);
        }
    }

    /// <summary>Port peers should use (0 = the bound port).</summary>
    public ushort AdvertisePort
    {
        get => Get(Native.ml_config_get_advertise_port);
        set => Set(Native.ml_config_set_advertise_port, value);
    }

    public uint ProtocolVersion
    {
        get => Get(Native.ml_config_get_protocol_version);
        set => Set(Native.ml_config_set_protocol_version, value);
    }

    public TimeSpan TcpTimeout
    {
        get => Ms(Get(Native.ml_config_get_tcp_timeout_ms));
        set => Set(Native.ml_config_set_tcp_timeout_ms, Util.Millis(value, nameof(TcpTimeout)));
    }

    public uint IndirectChecks
    {
        get => Get(Native.ml_config_get_indirect_checks);
        set => Set(Native.ml_config_set_indirect_checks, value);
    }

    public uint RetransmitMult
    {
        get => Get(Native.ml_config_get_retransmit_mult);
        set => Set(Native.ml_config_set_retransmit_mult, value);
    }

    public uint SuspicionMult
    {
        get => Get(Native.ml_config_get_suspicion_mult);
        set => Set(Native.ml_config_set_suspicion_mult, value);
    }

    /// <summary>1 turns off Lifeguard's suspicion acceleration.</summary>
    public uint SuspicionMaxTimeoutMult
    {
        get => Get(Native.ml_config_get_suspicion_max_timeout_mult);
        set => Set(Native.ml_config_set_suspicion_max_timeout_mult, value);
    }

    /// <summary>Zero disables periodic push/pull.</summary>
    public TimeSpan PushPullInterval
    {
        get => Ms(Get(Native.ml_config_get_push_pull_interval_ms));
        set => Set(Native.ml_config_set_push_pull_interval_ms, Util.Millis(value, nameof(PushPullInterval)));
    }

    /// <summary>Zero disables probing.</summary>
    public TimeSpan ProbeInterval
    {
        get => Ms(Get(Native.ml_config_get_probe_interval_ms));
        set => Set(Native.ml_config_set_probe_interval_ms, Util.Millis(value, nameof(ProbeInterval)));
    }

    public TimeSpan ProbeTimeout
    {
        get => Ms(Get(Native.ml_config_get_probe_timeout_ms));
        set => Set(Native.ml_config_set_probe_timeout_ms, Util.Millis(value, nameof(ProbeTimeout)));
    }

    /// <summary>Disables the TCP fallback ping for every node.</summary>
    public bool DisableTcpPings
    {
        get => Get(Native.ml_config_get_disable_tcp_pings) != 0;
        set => Set(Native.ml_config_set_disable_tcp_pings, value ? 1u : 0u);
    }

    /// <summary>Disables the TCP fallback ping towards one node; may be called several times.</summary>
    public void DisableTcpPingsForNode(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        Set((c, v) => Native.ml_config_disable_tcp_pings_for_node(c, v), Util.NoNul(name, "node name")!);
    }

    /// <summary>1 turns off Lifeguard's local health awareness.</summary>
    public uint AwarenessMaxMultiplier
    {
        get => Get(Native.ml_config_get_awareness_max_multiplier);
        set => Set(Native.ml_config_set_awareness_max_multiplier, value);
    }

    /// <summary>Zero disables gossip.</summary>
    public TimeSpan GossipInterval
    {
        get => Ms(Get(Native.ml_config_get_gossip_interval_ms));
        set => Set(Native.ml_config_set_gossip_interval_ms, Util.Millis(value, nameof(GossipInterval)));
    }

    public uint GossipNodes
    {
        get => Get(Native.ml_config_get_gossip_nodes);
        set => Set(Native.ml_config_set_gossip_nodes, value);
    }

    public TimeSpan GossipToTheDeadTime
    {
        get => Ms(Get(Native.ml_config_get_gossip_to_the_dead_time_ms));
        set => Set(Native.ml_config_set_gossip_to_the_dead_time_ms, Util.Millis(value, nameof(GossipToTheDeadTime)));
    }

    /// <summary>Largest datagram the library builds.</summary>
    public uint UdpBufferSize
    {
        get => Get(Native.ml_config_get_udp_buffer_size);
        set => Set(Native.ml_config_set_udp_buffer_size, value);
    }

    public TimeSpan DeadNodeReclaimTime
    {
        get => Ms(Get(Native.ml_config_get_dead_node_reclaim_time_ms));
        set => Set(Native.ml_config_set_dead_node_reclaim_time_ms, Util.Millis(value, nameof(DeadNodeReclaimTime)));
    }

    public uint HandoffQueueDepth
    {
        get => Get(Native.ml_config_get_handoff_queue_depth);
        set => Set(Native.ml_config_set_handoff_queue_depth, value);
    }

    public uint MetaMaxSize
    {
        get => Get(Native.ml_config_get_meta_max_size);
        set => Set(Native.ml_config_set_meta_max_size, value);
    }

    /// <summary>Metadata of the local node (TooLarge over <see cref="MetaMaxSize"/>).</summary>
    public byte[] Meta
    {
        get => Get(c => { nuint len; byte* p = Native.ml_config_get_meta(c, &len); return Util.Bytes(p, len); });
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            using var c = Handle.Use();
            fixed (byte* p = value)
                Util.Check(Native.ml_config_set_meta(c.Ptr, p, (nuint)value.Length));
        }
    }

    /// <summary>Least severe level passed to the log callback.</summary>
    public LogLevel LogLevel
    {
        get => (LogLevel)Get(Native.ml_config_get_log_level);
        set => Set(Native.ml_config_set_log_level, (uint)value);
    }

    /// <summary>Seed of the protocol's randomness; 0 picks one at random.</summary>
    public ulong Seed
    {
        get => Get(Native.ml_config_get_seed);
        set => Set(Native.ml_config_set_seed, value);
    }

    /// <summary>Delegate protocol version, min and max carried in the version vector.</summary>
    public void SetDelegateProtocol(byte version, byte min, byte max)
    {
        using var c = Handle.Use();
        Util.Check(Native.ml_config_set_delegate_protocol(c.Ptr, version, min, max));
    }

    public (byte Version, byte Min, byte Max) DelegateProtocol
    {
        get
        {
            using var c = Handle.Use();
            byte v, lo, hi;
            Native.ml_config_get_delegate_protocol(c.Ptr, &v, &lo, &hi);
            return (v, lo, hi);
        }
    }

    /// <summary>Extra push/pulls with random members shortly after a join (0..10; 0 =
    /// hashicorp's behaviour).</summary>
    public uint PostJoinPushPulls
    {
        get => Get(Native.ml_config_get_post_join_push_pulls);
        set => Set(Native.ml_config_set_post_join_push_pulls, value);
    }

    // ---- application data limits and bounds ----

    /// <summary>Largest user message sent or accepted reliably over TCP.</summary>
    public uint MaxUserMsgSize
    {
        get => Get(Native.ml_config_get_max_user_msg_size);
        set => Set(Native.ml_config_set_max_user_msg_size, value);
    }

    /// <summary>Largest stream message (push/pull state, reliable message) accepted.</summary>
    public uint MaxStreamSize
    {
        get => Get(Native.ml_config_get_max_stream_size);
        set => Set(Native.ml_config_set_max_stream_size, value);
    }

    /// <summary>Most nodes accepted in one push/pull.</summary>
    public uint MaxPushPullNodes
    {
        get => Get(Native.ml_config_get_max_push_pull_nodes);
        set => Set(Native.ml_config_set_max_push_pull_nodes, value);
    }

    /// <summary>Largest decompressed message.</summary>
    public uint MaxDecompressedSize
    {
        get => Get(Native.ml_config_get_max_decompressed_size);
        set => Set(Native.ml_config_set_max_decompressed_size, value);
    }

    /// <summary>Most inbound streams handled at once.</summary>
    public uint MaxConcurrentStreams
    {
        get => Get(Native.ml_config_get_max_concurrent_streams);
        set => Set(Native.ml_config_set_max_concurrent_streams, value);
    }

    /// <summary>Broadcast origins remembered for de-duplicating broadcasts (1..16777216,
    /// default 4096); past it the least recently heard is forgotten.</summary>
    public uint MaxBroadcastOrigins
    {
        get => Get(Native.ml_config_get_max_broadcast_origins);
        set => Set(Native.ml_config_set_max_broadcast_origins, value);
    }

    /// <summary>Inbound TCP connections open at once, whatever they carry (1..65535, default
    /// 512); more are closed at once.</summary>
    public uint MaxInboundConnections
    {
        get => Get(Native.ml_config_get_max_inbound_connections);
        set => Set(Native.ml_config_set_max_inbound_connections, value);
    }

    /// <summary>Queue the notifications inside the library instead of calling delegates on a
    /// library thread (default false): take them with <see cref="Memberlist.Events"/>,
    /// <see cref="Memberlist.ReadEventsAsync"/> or <see cref="Memberlist.PollEvents"/>. The
    /// notification delegates (events, log, IDelegate, conflict, ping, broadcasts, metrics)
    /// must then be null; merge and alive vetoes work.</summary>
    public bool EventQueue
    {
        get => Get(Native.ml_config_get_event_queue) != 0;
        set => Set(Native.ml_config_set_event_queue, value ? 1u : 0u);
    }

    /// <summary>Callbacks (events, notifications, metric samples) queued for delivery
    /// (1..16777216, default 65536); past it new ones are dropped and counted.</summary>
    public uint MaxQueuedCallbacks
    {
        get => Get(Native.ml_config_get_max_queued_callbacks);
        set => Set(Native.ml_config_set_max_queued_callbacks, value);
    }

    /// <summary>Log lines queued for the log callback (1..16777216, default 1024); past it they
    /// are dropped and counted, so that a log flood cannot crowd out events.</summary>
    public uint MaxQueuedLogLines
    {
        get => Get(Native.ml_config_get_max_queued_log_lines);
        set => Set(Native.ml_config_set_max_queued_log_lines, value);
    }

    /// <summary>Replies (acks, indirect probes) one received datagram may cause (1..255,
    /// default 4); further ones are dropped, so that this node cannot be used as an
    /// amplifier.</summary>
    public uint MaxRepliesPerPacket
    {
        get => Get(Native.ml_config_get_max_replies_per_packet);
        set => Set(Native.ml_config_set_max_replies_per_packet, value);
    }

    /// <summary>Application broadcasts held for gossip, own and forwarded (1..16777216, default
    /// 4096); past it the most-transmitted are dropped first.</summary>
    public uint MaxQueuedBroadcasts
    {
        get => Get(Native.ml_config_get_max_queued_broadcasts);
        set => Set(Native.ml_config_set_max_queued_broadcasts, value);
    }

    /// <summary>Recent application broadcasts a push/pull lists and repairs, so that a member
    /// the epidemic missed still gets them (0..4096, default 256; 0: best effort only, no
    /// repair, and outcomes are Delivered instead of Settled).</summary>
    public uint MaxRepairBroadcasts
    {
        get => Get(Native.ml_config_get_max_repair_broadcasts);
        set => Set(Native.ml_config_set_max_repair_broadcasts, value);
    }

    /// <summary>Bytes of application broadcasts held for gossip (65536..4294967295, default
    /// 4194304); past it the most-transmitted are dropped first.</summary>
    public uint MaxQueuedBroadcastBytes
    {
        get => Get(Native.ml_config_get_max_queued_broadcast_bytes);
        set => Set(Native.ml_config_set_max_queued_broadcast_bytes, value);
    }

    /// <summary>Inbound TCP connections from one IP address (1..65535, default 32), so that
    /// one source cannot hold every slot.</summary>
    public uint MaxInboundConnectionsPerSource
    {
        get => Get(Native.ml_config_get_max_inbound_connections_per_source);
        set => Set(Native.ml_config_set_max_inbound_connections_per_source, value);
    }

    /// <summary>Bytes of inbound stream bodies over 1 KiB read at once, as their headers
    /// declare them (1024..4294967295, default 64 MiB).</summary>
    public uint MaxInboundStreamBytes
    {
        get => Get(Native.ml_config_get_max_inbound_stream_bytes);
        set => Set(Native.ml_config_set_max_inbound_stream_bytes, value);
    }

    /// <summary>Automatic reconnection: every this long (default 30 s; zero: off) one member
    /// marked dead (never one that left) is pinged and, if it answers, joined, so that a
    /// healed partition merges back by itself.</summary>
    public TimeSpan ReconnectInterval
    {
        get => Ms(Get(Native.ml_config_get_reconnect_interval_ms));
        set => Set(Native.ml_config_set_reconnect_interval_ms, Util.Millis(value, nameof(ReconnectInterval)));
    }

    /// <summary>How long after its death a member is still tried (default and most: a day).</summary>
    public TimeSpan ReconnectTimeout
    {
        get => Ms(Get(Native.ml_config_get_reconnect_timeout_ms));
        set => Set(Native.ml_config_set_reconnect_timeout_ms, Util.Millis(value, nameof(ReconnectTimeout)));
    }

    /// <summary>Dead members remembered for reconnection (1..16777216, default 1024).</summary>
    public uint MaxReconnectMembers
    {
        get => Get(Native.ml_config_get_max_reconnect_members);
        set => Set(Native.ml_config_set_max_reconnect_members, value);
    }

    /// <summary>While no other member is alive, also re-join the addresses given to Join
    /// (default true).</summary>
    public bool ReconnectSeeds
    {
        get => Get(Native.ml_config_get_reconnect_seeds) != 0;
        set => Set(Native.ml_config_set_reconnect_seeds, value ? 1u : 0u);
    }

    /// <summary>The protocol on the wire (default <see cref="WireFormat.Native"/>).
    /// <see cref="WireFormat.Hashicorp"/> speaks hashicorp/memberlist 0.2.2's own protocol, to
    /// join clusters of Go memberlist nodes; there, broadcasts go out as plain user messages
    /// (ml_config_set_wire_format in memberlist.h says what else differs). Every node of a
    /// cluster must use the same one.</summary>
    public WireFormat WireFormat
    {
        get => (WireFormat)Get(Native.ml_config_get_wire_format);
        set => Set(Native.ml_config_set_wire_format, (uint)value);
    }

    // ---- security and framing ----

    /// <summary>Cluster label (0..255 bytes), carried on every packet and stream and bound into
    /// the encryption.</summary>
    public string Label
    {
        get => Get(c => Util.Utf8(Native.ml_config_get_label(c)));
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Set((c, v) => Native.ml_config_set_label(c, v), Util.NoNul(value, "Label")!);
        }
    }

    /// <summary>Inbound traffic carries no label; this node's label is assumed.</summary>
    public bool SkipInboundLabelCheck
    {
        get => Get(Native.ml_config_get_skip_inbound_label_check) != 0;
        set => Set(Native.ml_config_set_skip_inbound_label_check, value ? 1u : 0u);
    }

    /// <summary>Installs an AES-GCM key (16, 24 or 32 bytes); the first one is the primary and
    /// turns encryption on; every key is tried to decrypt.</summary>
    public void AddKey(byte[] key)
    {
        ArgumentNullException.ThrowIfNull(key);
        using var c = Handle.Use();
        fixed (byte* p = key)
            Util.Check(Native.ml_config_add_key(c.Ptr, p, (nuint)key.Length));
    }

    /// <summary>Number of keys installed.</summary>
    public uint KeyCount => Get(Native.ml_config_get_key_count);

    /// <summary>With keys: refuse plaintext input (default true).</summary>
    public bool GossipVerifyIncoming
    {
        get => Get(Native.ml_config_get_gossip_verify_incoming) != 0;
        set => Set(Native.ml_config_set_gossip_verify_incoming, value ? 1u : 0u);
    }

    /// <summary>With keys: encrypt output (default true).</summary>
    public bool GossipVerifyOutgoing
    {
        get => Get(Native.ml_config_get_gossip_verify_outgoing) != 0;
        set => Set(Native.ml_config_set_gossip_verify_outgoing, value ? 1u : 0u);
    }

    /// <summary>Compress packets and streams when that makes them smaller (default true).</summary>
    public bool EnableCompression
    {
        get => Get(Native.ml_config_get_enable_compression) != 0;
        set => Set(Native.ml_config_set_enable_compression, value ? 1u : 0u);
    }

    /// <summary>CRC32 on every UDP packet (default true).</summary>
    public bool EnableChecksum
    {
        get => Get(Native.ml_config_get_enable_checksum) != 0;
        set => Set(Native.ml_config_set_enable_checksum, value ? 1u : 0u);
    }

    /// <summary>Accepts nodes, packets and streams only from this CIDR range ("10.0.0.0/8");
    /// may be called several times (none: everyone is accepted).</summary>
    public void AddAllowedCidr(string cidr)
    {
        ArgumentNullException.ThrowIfNull(cidr);
        Set((c, v) => Native.ml_config_add_allowed_cidr(c, v), Util.NoNul(cidr, "CIDR")!);
    }

    /// <summary>Number of CIDR ranges added.</summary>
    public uint AllowedCidrCount => Get(Native.ml_config_get_allowed_cidr_count);
}
