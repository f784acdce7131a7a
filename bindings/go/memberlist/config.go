package memberlist

/*
#include <stdlib.h>
#include <memberlist.h>
*/
import "C"

import (
	"fmt"
	"io"
	"log"
	"runtime"
	"time"
	"unsafe"
)

// LogLevel is the least severe level passed to the logger (LogTrace ... LogOff).
type LogLevel int

func (l LogLevel) String() string {
	switch l {
	case LogTrace:
		return "TRACE"
	case LogDebug:
		return "DEBUG"
	case LogInfo:
		return "INFO"
	case LogWarn:
		return "WARN"
	case LogError:
		return "ERROR"
	}
	return "OFF"
}

// WireFormat is the protocol a node speaks on the wire.
type WireFormat int

const (
	WireNative    WireFormat = mlWireNative    // libmemberlist's own format (the default)
	WireHashicorp WireFormat = mlWireHashicorp // hashicorp/memberlist's, to join Go memberlist clusters
)

// Config mirrors hashicorp/memberlist's Config; start from DefaultLANConfig,
// DefaultWANConfig or DefaultLocalConfig and change fields. Create copies it.
type Config struct {
	Name          string // unique node name (default: the host name)
	BindAddr      string // IPv4/IPv6 literal to bind to
	BindPort      int    // 0 lets the system pick a port (see LocalNode)
	AdvertiseAddr string // "" = derived from BindAddr
	AdvertisePort int    // 0 = the bound port

	ProtocolVersion         uint8
	DelegateProtocolVersion uint8
	DelegateProtocolMin     uint8
	DelegateProtocolMax     uint8

	TCPTimeout              time.Duration
	IndirectChecks          int
	RetransmitMult          int
	SuspicionMult           int
	SuspicionMaxTimeoutMult int
	PushPullInterval        time.Duration // 0 disables push/pull
	ProbeInterval           time.Duration // 0 disables probing
	ProbeTimeout            time.Duration
	DisableTcpPings         bool
	DisableTcpPingsForNodes []string // (hashicorp: a func; here the names)
	AwarenessMaxMultiplier  int
	GossipInterval          time.Duration // 0 disables gossip
	GossipNodes             int
	GossipToTheDeadTime     time.Duration
	UDPBufferSize           int
	DeadNodeReclaimTime     time.Duration
	HandoffQueueDepth       int
	MetaMaxSize             int
	Meta                    []byte // local node metadata (hashicorp: Delegate.NodeMeta)
	Seed                    uint64 // 0 = random
	// Extra push/pulls with random members shortly after a join (0 = hashicorp's behaviour).
	PostJoinPushPulls int

	// Application data limits and bounds on what the network may make this node hold.
	MaxUserMsgSize       int // largest reliable user message sent or accepted
	MaxStreamSize        int // largest stream message (push/pull, reliable message) accepted
	MaxPushPullNodes     int // most nodes accepted in one push/pull
	MaxDecompressedSize  int // largest decompressed message
	MaxConcurrentStreams int // most inbound streams handled at once
	MaxBroadcastOrigins  int // broadcast origins remembered for de-duplication (default 4096)
	// Most inbound TCP connections open at once, whatever they carry; more are closed at
	// once (1..65535, default 512).
	MaxInboundConnections int
	// Most callbacks (events, notifications, metric samples) queued for delivery; beyond it
	// new ones are dropped and counted (1..16777216, default 65536).
	MaxQueuedCallbacks int
	// Most log lines queued for the logger; beyond it they are dropped and counted, so that
	// a log flood cannot crowd out events (1..16777216, default 1024).
	MaxQueuedLogLines int
	// Most replies (acks, indirect probes) one received datagram may cause; further ones are
	// dropped, so that this node cannot be used as an amplifier (1..255, default 4).
	MaxRepliesPerPacket int
	// Most application broadcasts held for gossip, own and forwarded; beyond it the
	// most-transmitted are dropped first (1..16777216, default 4096).
	MaxQueuedBroadcasts int
	// Most bytes of application broadcasts held for gossip, as MaxQueuedBroadcasts
	// (65536..4294967295, default 4194304).
	MaxQueuedBroadcastBytes int
	// Recent application broadcasts a push/pull lists and repairs, so that a member the
	// epidemic missed still gets them (0..4096, default 256; 0: best effort only, no repair).
	MaxRepairBroadcasts int
	// Most inbound TCP connections from one IP address, so that one source cannot hold
	// every slot (1..65535, default 32).
	MaxInboundConnectionsPerSource int
	// Most bytes of inbound stream bodies over 1 KiB read at once, as their headers declare
	// them (1024..4294967295, default 64 MiB).
	MaxInboundStreamBytes int

	// Automatic reconnection (not in hashicorp's memberlist; Serf does it above it): every
	// ReconnectInterval (default 30 s; 0: off) one member marked dead (never one that left)
	// is pinged and, if it answers, joined, so that a healed partition merges back by itself.
	ReconnectInterval time.Duration
	// How long after its death a member is still tried (default 24 h, at most 24 h).
	ReconnectTimeout time.Duration
	// Most dead members remembered for reconnection (1..16777216, default 1024).
	MaxReconnectMembers int
	// While no other member is alive, also re-join the addresses given to Join (default true).
	ReconnectSeeds bool

	// The protocol on the wire (default WireNative). WireHashicorp speaks hashicorp/memberlist
	// 0.2.2's own protocol, so that the node joins clusters of Go memberlist nodes; there,
	// QueueBroadcast sends plain user messages (see ml_config_set_wire_format in memberlist.h
	// for what else differs). Every node of a cluster must use the same one.
	WireFormat WireFormat

	// Security and framing.
	Label                 string   // cluster label, carried on every packet and stream
	SkipInboundLabelCheck bool     // inbound traffic carries no label; ours is assumed
	SecretKey             []byte   // primary AES-GCM key (16, 24 or 32 bytes); nil: no encryption
	Keys                  [][]byte // further keys tried to decrypt (hashicorp: Keyring)
	GossipVerifyIncoming  bool     // with keys: refuse plaintext input
	GossipVerifyOutgoing  bool     // with keys: encrypt output
	EnableCompression     bool     // compress packets and streams when that makes them smaller
	EnableChecksum        bool     // CRC32 on every UDP packet
	CIDRsAllowed          []string // accept nodes, packets and streams only from these ranges

	// EventCh turns on the library's event queue: the notifications (membership events, user
	// messages, broadcasts and their outcomes, conflicts, log lines) are queued inside the
	// library instead of calling Go on a library thread, and a goroutine of the binding
	// takes them in batches and sends them here (the pull-based ChannelEventDelegate; see
	// Event). A full channel never blocks the protocol: the queue holds up to
	// MaxQueuedCallbacks, then drops and counts (Memberlist.EventStats). Events, Logger,
	// LogOutput, Conflict, Broadcasts and MetricSink must then be nil; Delegate's hooks work
	// but its NotifyMsg is not called (messages are Events), nor NotifyPingComplete.
	EventCh chan<- Event
	// EventQueue turns the queue on without EventCh: take the events with
	// Memberlist.PollEvents, waiting on Memberlist.EventFD.
	EventQueue bool

	Events     EventDelegate     // may be nil, as every hook below
	Delegate   Delegate          // metadata, user messages, broadcasts, push/pull state
	Merge      MergeDelegate     // may veto joins
	Alive      AliveDelegate     // may keep nodes out
	Conflict   ConflictDelegate  // name conflicts
	Ping       PingDelegate      // ack payloads and probe completions
	Broadcasts BroadcastDelegate // QueueBroadcast deliveries and outcomes
	// MetricSink receives every metric sample as it is recorded (hashicorp: go-metrics).
	MetricSink func(name string, kind MetricKind, value float64)
	LogLevel   LogLevel
	Logger     *log.Logger // takes precedence over LogOutput
	LogOutput  io.Writer   // both nil: the library prints WARN and above to stderr
	Runtime    *Runtime    // nil: the process-wide default runtime; Create refuses a closed one

	// Transport carries the node's datagrams and streams instead of the library's sockets
	// (nil: the sockets, bound at BindAddr:BindPort). The node advertises the address its
	// FinalAdvertiseAddr returns; TCPTimeout bounds each StreamTo. See Transport.
	Transport Transport

	// OnCallbackError receives every panic recovered from the callbacks above (nil: they
	// are printed to stderr). It runs on the callback's thread under the callbacks' rules:
	// quick, never blocking (send to a buffered channel in a select with a default case).
	OnCallbackError func(*CallbackError)
}

// DefaultLANConfig is hashicorp's DefaultLANConfig, read from the library.
func DefaultLANConfig() *Config {
	return preset(func(c **C.ml_config) C.ml_status { return C.ml_config_new_lan(c) })
}

// DefaultWANConfig is hashicorp's DefaultWANConfig.
func DefaultWANConfig() *Config {
	return preset(func(c **C.ml_config) C.ml_status { return C.ml_config_new_wan(c) })
}

// DefaultLocalConfig is hashicorp's DefaultLocalConfig (loopback, fast timers).
func DefaultLocalConfig() *Config {
	return preset(func(c **C.ml_config) C.ml_status { return C.ml_config_new_local(c) })
}

func preset(ctor func(**C.ml_config) C.ml_status) *Config {
	var cfg *C.ml_config
	if st := ctor(&cfg); st != C.ML_OK {
		panic(fmt.Sprintf("memberlist: creating a preset config failed: %v", Status(st)))
	}
	defer C.ml_config_free(cfg)
	return fromC(cfg)
}

// fromC reads every knob the header has a getter for into a Config.
func fromC(cfg *C.ml_config) *Config {
	ms := func(v C.uint32_t) time.Duration { return time.Duration(v) * time.Millisecond }
	var dv, dmin, dmax C.uint8_t
	C.ml_config_get_delegate_protocol(cfg, &dv, &dmin, &dmax)
	var metaLen C.size_t
	meta := C.ml_config_get_meta(cfg, &metaLen)
	c := &Config{
		Name:                           C.GoString(C.ml_config_get_name(cfg)),
		BindAddr:                       C.GoString(C.ml_config_get_bind_addr(cfg)),
		BindPort:                       int(C.ml_config_get_bind_port(cfg)),
		AdvertiseAddr:                  C.GoString(C.ml_config_get_advertise_addr(cfg)),
		AdvertisePort:                  int(C.ml_config_get_advertise_port(cfg)),
		ProtocolVersion:                uint8(C.ml_config_get_protocol_version(cfg)),
		DelegateProtocolVersion:        uint8(dv),
		DelegateProtocolMin:            uint8(dmin),
		DelegateProtocolMax:            uint8(dmax),
		TCPTimeout:                     ms(C.ml_config_get_tcp_timeout_ms(cfg)),
		IndirectChecks:                 int(C.ml_config_get_indirect_checks(cfg)),
		RetransmitMult:                 int(C.ml_config_get_retransmit_mult(cfg)),
		SuspicionMult:                  int(C.ml_config_get_suspicion_mult(cfg)),
		SuspicionMaxTimeoutMult:        int(C.ml_config_get_suspicion_max_timeout_mult(cfg)),
		PushPullInterval:               ms(C.ml_config_get_push_pull_interval_ms(cfg)),
		ProbeInterval:                  ms(C.ml_config_get_probe_interval_ms(cfg)),
		ProbeTimeout:                   ms(C.ml_config_get_probe_timeout_ms(cfg)),
		DisableTcpPings:                C.ml_config_get_disable_tcp_pings(cfg) != 0,
		AwarenessMaxMultiplier:         int(C.ml_config_get_awareness_max_multiplier(cfg)),
		GossipInterval:                 ms(C.ml_config_get_gossip_interval_ms(cfg)),
		GossipNodes:                    int(C.ml_config_get_gossip_nodes(cfg)),
		GossipToTheDeadTime:            ms(C.ml_config_get_gossip_to_the_dead_time_ms(cfg)),
		UDPBufferSize:                  int(C.ml_config_get_udp_buffer_size(cfg)),
		DeadNodeReclaimTime:            ms(C.ml_config_get_dead_node_reclaim_time_ms(cfg)),
		HandoffQueueDepth:              int(C.ml_config_get_handoff_queue_depth(cfg)),
		MetaMaxSize:                    int(C.ml_config_get_meta_max_size(cfg)),
		Seed:                           uint64(C.ml_config_get_seed(cfg)),
		LogLevel:                       LogLevel(C.ml_config_get_log_level(cfg)),
		PostJoinPushPulls:              int(C.ml_config_get_post_join_push_pulls(cfg)),
		MaxUserMsgSize:                 int(C.ml_config_get_max_user_msg_size(cfg)),
		MaxStreamSize:                  int(C.ml_config_get_max_stream_size(cfg)),
		MaxPushPullNodes:               int(C.ml_config_get_max_push_pull_nodes(cfg)),
		MaxDecompressedSize:            int(C.ml_config_get_max_decompressed_size(cfg)),
		MaxConcurrentStreams:           int(C.ml_config_get_max_concurrent_streams(cfg)),
		MaxBroadcastOrigins:            int(C.ml_config_get_max_broadcast_origins(cfg)),
		MaxInboundConnections:          int(C.ml_config_get_max_inbound_connections(cfg)),
		MaxQueuedCallbacks:             int(C.ml_config_get_max_queued_callbacks(cfg)),
		MaxQueuedLogLines:              int(C.ml_config_get_max_queued_log_lines(cfg)),
		MaxRepliesPerPacket:            int(C.ml_config_get_max_replies_per_packet(cfg)),
		MaxQueuedBroadcasts:            int(C.ml_config_get_max_queued_broadcasts(cfg)),
		MaxQueuedBroadcastBytes:        int(C.ml_config_get_max_queued_broadcast_bytes(cfg)),
		MaxRepairBroadcasts:            int(C.ml_config_get_max_repair_broadcasts(cfg)),
		MaxInboundConnectionsPerSource: int(C.ml_config_get_max_inbound_connections_per_source(cfg)),
		MaxInboundStreamBytes:          int(C.ml_config_get_max_inbound_stream_bytes(cfg)),
		ReconnectInterval:              ms(C.ml_config_get_reconnect_interval_ms(cfg)),
		ReconnectTimeout:               ms(C.ml_config_get_reconnect_timeout_ms(cfg)),
		MaxReconnectMembers:            int(C.ml_config_get_max_reconnect_members(cfg)),
		ReconnectSeeds:                 C.ml_config_get_reconnect_seeds(cfg) != 0,
		WireFormat:                     WireFormat(C.ml_config_get_wire_format(cfg)),
		Label:                          C.GoString(C.ml_config_get_label(cfg)),
		SkipInboundLabelCheck:          C.ml_config_get_skip_inbound_label_check(cfg) != 0,
		GossipVerifyIncoming:           C.ml_config_get_gossip_verify_incoming(cfg) != 0,
		GossipVerifyOutgoing:           C.ml_config_get_gossip_verify_outgoing(cfg) != 0,
		EnableCompression:              C.ml_config_get_enable_compression(cfg) != 0,
		EnableChecksum:                 C.ml_config_get_enable_checksum(cfg) != 0,
	}
	if meta != nil && metaLen > 0 {
		c.Meta = C.GoBytes(unsafe.Pointer(meta), C.int(metaLen))
	}
	return c
}

// toC builds the native config; every field goes through its setter, so an out-of-range
// value comes back as the library's error naming the knob. The caller holds LockOSThread.
func (c *Config) toC() (*C.ml_config, error) {
	var cfg *C.ml_config
	if err := lastError(C.ml_config_new_lan(&cfg)); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			C.ml_config_free(cfg)
		}
	}()
	var durErr error
	str := func(set func(*C.ml_config, *C.char) C.ml_status, v string) func() C.ml_status {
		return func() C.ml_status {
			s, err := cString(v, "config value")
			if err != nil {
				if durErr == nil {
					durErr = err
				}
				return C.ML_OK
			}
			defer C.free(unsafe.Pointer(s))
			return set(cfg, s)
		}
	}
	ms := func(d time.Duration, what string) C.uint32_t {
		v, err := millis(d, what)
		if err != nil && durErr == nil {
			durErr = err
		}
		return v
	}
	u32 := func(v int, what string) C.uint32_t {
		if (v < 0 || v > 0xffffffff) && durErr == nil {
			durErr = &Error{StatusInvalid, fmt.Sprintf("%s %d out of range", what, v)}
		}
		return C.uint32_t(v)
	}
	u16 := func(v int, what string) C.uint16_t {
		if (v < 0 || v > 0xffff) && durErr == nil {
			durErr = &Error{StatusInvalid, fmt.Sprintf("%s %d out of range", what, v)}
		}
		return C.uint16_t(v)
	}
	steps := []func() C.ml_status{
		str(func(c *C.ml_config, s *C.char) C.ml_status { return C.ml_config_set_name(c, s) }, c.Name),
		str(func(c *C.ml_config, s *C.char) C.ml_status { return C.ml_config_set_bind_addr(c, s) }, c.BindAddr),
		func() C.ml_status { return C.ml_config_set_bind_port(cfg, u16(c.BindPort, "BindPort")) },
		str(func(c *C.ml_config, s *C.char) C.ml_status { return C.ml_config_set_advertise_addr(c, s) }, c.AdvertiseAddr),
		func() C.ml_status { return C.ml_config_set_advertise_port(cfg, u16(c.AdvertisePort, "AdvertisePort")) },
		func() C.ml_status { return C.ml_config_set_protocol_version(cfg, C.uint32_t(c.ProtocolVersion)) },
		func() C.ml_status {
			return C.ml_config_set_delegate_protocol(cfg, C.uint8_t(c.DelegateProtocolVersion),
				C.uint8_t(c.DelegateProtocolMin), C.uint8_t(c.DelegateProtocolMax))
		},
		func() C.ml_status { return C.ml_config_set_tcp_timeout_ms(cfg, ms(c.TCPTimeout, "TCPTimeout")) },
		func() C.ml_status {
			return C.ml_config_set_indirect_checks(cfg, u32(c.IndirectChecks, "IndirectChecks"))
		},
		func() C.ml_status {
			return C.ml_config_set_retransmit_mult(cfg, u32(c.RetransmitMult, "RetransmitMult"))
		},
		func() C.ml_status { return C.ml_config_set_suspicion_mult(cfg, u32(c.SuspicionMult, "SuspicionMult")) },
		func() C.ml_status {
			return C.ml_config_set_suspicion_max_timeout_mult(cfg, u32(c.SuspicionMaxTimeoutMult, "SuspicionMaxTimeoutMult"))
		},
		func() C.ml_status {
			return C.ml_config_set_push_pull_interval_ms(cfg, ms(c.PushPullInterval, "PushPullInterval"))
		},
		func() C.ml_status {
			return C.ml_config_set_probe_interval_ms(cfg, ms(c.ProbeInterval, "ProbeInterval"))
		},
		func() C.ml_status { return C.ml_config_set_probe_timeout_ms(cfg, ms(c.ProbeTimeout, "ProbeTimeout")) },
		func() C.ml_status {
			return C.ml_config_set_disable_tcp_pings(cfg, boolU32(c.DisableTcpPings))
		},
		func() C.ml_status {
			return C.ml_config_set_awareness_max_multiplier(cfg, u32(c.AwarenessMaxMultiplier, "AwarenessMaxMultiplier"))
		},
		func() C.ml_status {
			return C.ml_config_set_gossip_interval_ms(cfg, ms(c.GossipInterval, "GossipInterval"))
		},
		func() C.ml_status { return C.ml_config_set_gossip_nodes(cfg, u32(c.GossipNodes, "GossipNodes")) },
		func() C.ml_status {
			return C.ml_config_set_gossip_to_the_dead_time_ms(cfg, ms(c.GossipToTheDeadTime, "GossipToTheDeadTime"))
		},
		func() C.ml_status { return C.ml_config_set_udp_buffer_size(cfg, u32(c.UDPBufferSize, "UDPBufferSize")) },
		func() C.ml_status {
			return C.ml_config_set_dead_node_reclaim_time_ms(cfg, ms(c.DeadNodeReclaimTime, "DeadNodeReclaimTime"))
		},
		func() C.ml_status {
			return C.ml_config_set_handoff_queue_depth(cfg, u32(c.HandoffQueueDepth, "HandoffQueueDepth"))
		},
		func() C.ml_status { return C.ml_config_set_meta_max_size(cfg, u32(c.MetaMaxSize, "MetaMaxSize")) },
		func() C.ml_status {
			if len(c.Meta) == 0 {
				return C.ml_config_set_meta(cfg, nil, 0)
			}
			// C.CBytes copies into C memory: no Go pointer crosses.
			p := C.CBytes(c.Meta)
			defer C.free(p)
			return C.ml_config_set_meta(cfg, (*C.uint8_t)(p), C.size_t(len(c.Meta)))
		},
		func() C.ml_status { return C.ml_config_set_seed(cfg, C.uint64_t(c.Seed)) },
		func() C.ml_status { return C.ml_config_set_log_level(cfg, C.uint32_t(c.LogLevel)) },
		func() C.ml_status {
			return C.ml_config_set_post_join_push_pulls(cfg, u32(c.PostJoinPushPulls, "PostJoinPushPulls"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_user_msg_size(cfg, u32(c.MaxUserMsgSize, "MaxUserMsgSize"))
		},
		func() C.ml_status { return C.ml_config_set_max_stream_size(cfg, u32(c.MaxStreamSize, "MaxStreamSize")) },
		func() C.ml_status {
			return C.ml_config_set_max_push_pull_nodes(cfg, u32(c.MaxPushPullNodes, "MaxPushPullNodes"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_decompressed_size(cfg, u32(c.MaxDecompressedSize, "MaxDecompressedSize"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_concurrent_streams(cfg, u32(c.MaxConcurrentStreams, "MaxConcurrentStreams"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_broadcast_origins(cfg, u32(c.MaxBroadcastOrigins, "MaxBroadcastOrigins"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_inbound_connections(cfg, u32(c.MaxInboundConnections, "MaxInboundConnections"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_queued_callbacks(cfg, u32(c.MaxQueuedCallbacks, "MaxQueuedCallbacks"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_queued_log_lines(cfg, u32(c.MaxQueuedLogLines, "MaxQueuedLogLines"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_replies_per_packet(cfg, u32(c.MaxRepliesPerPacket, "MaxRepliesPerPacket"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_queued_broadcasts(cfg, u32(c.MaxQueuedBroadcasts, "MaxQueuedBroadcasts"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_queued_broadcast_bytes(cfg, u32(c.MaxQueuedBroadcastBytes, "MaxQueuedBroadcastBytes"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_repair_broadcasts(cfg, u32(c.MaxRepairBroadcasts, "MaxRepairBroadcasts"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_inbound_connections_per_source(cfg,
				u32(c.MaxInboundConnectionsPerSource, "MaxInboundConnectionsPerSource"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_inbound_stream_bytes(cfg, u32(c.MaxInboundStreamBytes, "MaxInboundStreamBytes"))
		},
		func() C.ml_status {
			return C.ml_config_set_reconnect_interval_ms(cfg, ms(c.ReconnectInterval, "ReconnectInterval"))
		},
		func() C.ml_status {
			return C.ml_config_set_reconnect_timeout_ms(cfg, ms(c.ReconnectTimeout, "ReconnectTimeout"))
		},
		func() C.ml_status {
			return C.ml_config_set_max_reconnect_members(cfg, u32(c.MaxReconnectMembers, "MaxReconnectMembers"))
		},
		func() C.ml_status { return C.ml_config_set_reconnect_seeds(cfg, boolU32(c.ReconnectSeeds)) },
		func() C.ml_status { return C.ml_config_set_wire_format(cfg, u32(int(c.WireFormat), "WireFormat")) },
		str(func(c *C.ml_config, s *C.char) C.ml_status { return C.ml_config_set_label(c, s) }, c.Label),
		func() C.ml_status {
			return C.ml_config_set_skip_inbound_label_check(cfg, boolU32(c.SkipInboundLabelCheck))
		},
		func() C.ml_status {
			return C.ml_config_set_gossip_verify_incoming(cfg, boolU32(c.GossipVerifyIncoming))
		},
		func() C.ml_status {
			return C.ml_config_set_gossip_verify_outgoing(cfg, boolU32(c.GossipVerifyOutgoing))
		},
		func() C.ml_status { return C.ml_config_set_enable_compression(cfg, boolU32(c.EnableCompression)) },
		func() C.ml_status { return C.ml_config_set_enable_checksum(cfg, boolU32(c.EnableChecksum)) },
	}
	keys := c.Keys
	if c.SecretKey != nil {
		keys = append([][]byte{c.SecretKey}, keys...) // the first key installed is the primary
	}
	for _, key := range keys {
		key := key
		steps = append(steps, func() C.ml_status {
			p := C.CBytes(key)
			defer C.free(p)
			return C.ml_config_add_key(cfg, (*C.uint8_t)(p), C.size_t(len(key)))
		})
	}
	for _, cidr := range c.CIDRsAllowed {
		steps = append(steps, str(func(c *C.ml_config, s *C.char) C.ml_status {
			return C.ml_config_add_allowed_cidr(c, s)
		}, cidr))
	}
	for _, name := range c.DisableTcpPingsForNodes {
		steps = append(steps, str(func(c *C.ml_config, s *C.char) C.ml_status {
			return C.ml_config_disable_tcp_pings_for_node(c, s)
		}, name))
	}
	for _, step := range steps {
		st := step()
		if durErr != nil {
			return nil, durErr
		}
		if err := lastError(st); err != nil {
			return nil, err
		}
	}
	ok = true
	return cfg, nil
}

// logFunc turns Logger/LogOutput into the log callback (nil: the library's stderr default).
func (c *Config) logFunc() func(LogLevel, string) {
	logger := c.Logger
	if logger == nil && c.LogOutput != nil {
		logger = log.New(c.LogOutput, "", log.LstdFlags)
	}
	if logger == nil {
		return nil
	}
	return func(level LogLevel, msg string) { logger.Printf("[%s] memberlist: %s", level, msg) }
}

// throughC is the config as the library holds it after toC, read back with fromC, so that
// tests can check that a field reaches its setter.
func (c *Config) throughC() (*Config, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, err := c.toC()
	if err != nil {
		return nil, err
	}
	defer C.ml_config_free(cfg)
	return fromC(cfg), nil
}

// Validate reports the error Create would return for the config's values, without
// binding anything.
func (c *Config) Validate() error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cfg, err := c.toC()
	if err == nil {
		C.ml_config_free(cfg)
	}
	return err
}
