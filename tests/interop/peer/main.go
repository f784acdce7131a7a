// A Go memberlist node (Debian's hashicorp/memberlist 0.2.2) driven by the interop tests:
// one JSON command per line on stdin, one JSON event per line on stdout. Every event is a
// flat object (strings, numbers, booleans) so that the C++ side needs no JSON library.
//
// Build offline in GOPATH mode (tests/interop/CMakeLists.txt does it):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o memberlist-peer main.go
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"reflect"
	"sync"
	"time"
	"unsafe"

	"github.com/hashicorp/memberlist"
)

type command struct {
	Cmd  string `json:"cmd"`
	Req  int    `json:"req"`
	Name string `json:"name"`
	// start
	Bind         string   `json:"bind"`
	Port         int      `json:"port"`
	Meta         string   `json:"meta"`
	Keys         []string `json:"keys"` // raw key bytes as strings of 16, 24 or 32 chars
	Compress     bool     `json:"compress"`
	ProtocolVsn  int      `json:"protocol_version"`
	DelegateVsn  int      `json:"delegate_version"`
	DelegateMin  int      `json:"delegate_min"`
	DelegateMax  int      `json:"delegate_max"`
	ProbeMs      int      `json:"probe_ms"`
	GossipMs     int      `json:"gossip_ms"`
	PushPullMs   int      `json:"push_pull_ms"`
	SuspicionMul int      `json:"suspicion_mult"`
	State        string   `json:"state"` // LocalState
	Addr16       bool     `json:"addr16"` // advertise IPv4 in net.IP's 16-byte form
	// join
	Addrs []string `json:"addrs"`
	// send / broadcast
	To       string `json:"to"`
	Data     string `json:"data"`
	Reliable bool   `json:"reliable"`
	// leave / update
	TimeoutMs int `json:"timeout_ms"`
}

var (
	outMu sync.Mutex
	out   = bufio.NewWriter(os.Stdout)
)

func emit(ev map[string]interface{}) {
	b, err := json.Marshal(ev)
	if err != nil {
		panic(err)
	}
	outMu.Lock()
	defer outMu.Unlock()
	out.Write(b)
	out.WriteByte('\n')
	out.Flush()
}

// delegate: metadata, user messages, broadcasts and push/pull state.
type delegate struct {
	mu     sync.Mutex
	meta   []byte
	state  []byte
	queue  *memberlist.TransmitLimitedQueue
	expect bool
}

type broadcast []byte

func (b broadcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b broadcast) Message() []byte                       { return b }
func (b broadcast) Finished()                             {}

func (d *delegate) NodeMeta(limit int) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.meta
}
func (d *delegate) NotifyMsg(b []byte) {
	emit(map[string]interface{}{"ev": "msg", "data": string(b)})
}
func (d *delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.queue.GetBroadcasts(overhead, limit)
}
func (d *delegate) LocalState(join bool) []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.state
}
func (d *delegate) MergeRemoteState(buf []byte, join bool) {
	emit(map[string]interface{}{"ev": "merge", "data": string(buf), "join": join})
}

type events struct{}

// In 0.2.2 the event's *Node points into memberlist's nodeState, whose own State field
// shadows Node.State (which stays 0): read it through a mirror of nodeState's layout.
type nodeStateMirror struct {
	memberlist.Node
	Incarnation uint32
	State       memberlist.NodeStateType
}

func node(ev string, n *memberlist.Node) map[string]interface{} {
	st := (*nodeStateMirror)(unsafe.Pointer(n)).State
	return map[string]interface{}{"ev": ev, "name": n.Name, "addr": n.Address(), "meta": string(n.Meta),
		"state": int(st), "addr_len": len(n.Addr)}
}
func (events) NotifyJoin(n *memberlist.Node)   { emit(node("join", n)) }
func (events) NotifyLeave(n *memberlist.Node)  { emit(node("leave", n)) }
func (events) NotifyUpdate(n *memberlist.Node) { emit(node("update", n)) }
func (events) NotifyConflict(existing, other *memberlist.Node) {
	emit(map[string]interface{}{"ev": "conflict", "name": existing.Name, "addr_len": len(existing.Addr),
		"other_addr_len": len(other.Addr)})
}

// A NetTransport that advertises IPv4 addresses as 16 bytes, as memberlist does with an
// autodetected private address (net.ParseIP's form).
type longAddr struct{ *memberlist.NetTransport }

func (t longAddr) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	a, p, err := t.NetTransport.FinalAdvertiseAddr(ip, port)
	return a.To16(), p, err
}

// The incarnation is not in memberlist's public API: read it from nodeMap under nodeLock.
func incarnations(m *memberlist.Memberlist) map[string]uint32 {
	v := reflect.ValueOf(m).Elem()
	lock := (*sync.RWMutex)(unsafe.Pointer(v.FieldByName("nodeLock").UnsafeAddr()))
	lock.RLock()
	defer lock.RUnlock()
	res := map[string]uint32{}
	it := v.FieldByName("nodeMap").MapRange()
	for it.Next() {
		res[it.Key().String()] = uint32(it.Value().Elem().FieldByName("Incarnation").Uint())
	}
	return res
}

func main() {
	log.SetOutput(os.Stderr)
	var m *memberlist.Memberlist
	var keyring *memberlist.Keyring
	d := &delegate{}
	in := bufio.NewReader(os.Stdin)
	for {
		line, err := in.ReadBytes('\n')
		if err == io.EOF {
			if m != nil {
				m.Shutdown()
			}
			return
		}
		var c command
		if err := json.Unmarshal(line, &c); err != nil {
			emit(map[string]interface{}{"ev": "error", "err": "bad command: " + err.Error()})
			continue
		}
		reply := func(ev string, err error, extra map[string]interface{}) {
			e := map[string]interface{}{"ev": ev, "req": c.Req, "err": ""}
			if err != nil {
				e["err"] = err.Error()
			}
			for k, v := range extra {
				e[k] = v
			}
			emit(e)
		}
		switch c.Cmd {
		case "start":
			conf := memberlist.DefaultLocalConfig()
			conf.Name = c.Name
			conf.BindAddr = c.Bind
			conf.BindPort = c.Port
			conf.AdvertiseAddr = c.Bind // 4 bytes for IPv4, as To4() gives
			conf.EnableCompression = c.Compress
			if c.ProtocolVsn != 0 {
				conf.ProtocolVersion = uint8(c.ProtocolVsn)
			}
			conf.DelegateProtocolVersion = uint8(c.DelegateVsn)
			conf.DelegateProtocolMin = uint8(c.DelegateMin)
			conf.DelegateProtocolMax = uint8(c.DelegateMax)
			if c.ProbeMs > 0 {
				conf.ProbeInterval = time.Duration(c.ProbeMs) * time.Millisecond
				conf.ProbeTimeout = conf.ProbeInterval / 2
			}
			if c.GossipMs > 0 {
				conf.GossipInterval = time.Duration(c.GossipMs) * time.Millisecond
			}
			if c.PushPullMs > 0 {
				conf.PushPullInterval = time.Duration(c.PushPullMs) * time.Millisecond
			}
			if c.SuspicionMul > 0 {
				conf.SuspicionMult = c.SuspicionMul
			}
			conf.GossipToTheDeadTime = 5 * time.Second
			if len(c.Keys) > 0 {
				var keys [][]byte
				for _, k := range c.Keys {
					keys = append(keys, []byte(k))
				}
				kr, err := memberlist.NewKeyring(keys, keys[0])
				if err != nil {
					reply("started", err, nil)
					continue
				}
				conf.Keyring = kr
				keyring = kr
			}
			d.meta = []byte(c.Meta)
			d.state = []byte(c.State)
			d.queue = &memberlist.TransmitLimitedQueue{NumNodes: func() int {
				if m == nil {
					return 1
				}
				return m.NumMembers()
			}, RetransmitMult: 3}
			conf.Delegate = d
			conf.Events = events{}
			conf.Conflict = events{}
			if c.Addr16 {
				nt, err := memberlist.NewNetTransport(&memberlist.NetTransportConfig{
					BindAddrs: []string{c.Bind}, BindPort: c.Port, Logger: log.New(os.Stderr, "", log.LstdFlags)})
				if err != nil {
					reply("started", err, nil)
					continue
				}
				conf.Transport = longAddr{nt}
				conf.AdvertisePort = nt.GetAutoBindPort() // Create does this only for its own transport
			}
			conf.LogOutput = os.Stderr
			ml, err := memberlist.Create(conf)
			if err != nil {
				reply("started", err, nil)
				continue
			}
			m = ml
			ln := m.LocalNode()
			reply("started", nil, map[string]interface{}{"addr": ln.Address(), "port": int(ln.Port)})
		case "join":
			n, err := m.Join(c.Addrs)
			reply("joined", err, map[string]interface{}{"n": n})
		case "members":
			incs := incarnations(m)
			count := 0
			for _, n := range m.Members() {
				e := node("member", n)
				e["req"] = c.Req
				e["inc"] = incs[n.Name]
				emit(e)
				count++
			}
			reply("members_end", nil, map[string]interface{}{"count": count})
		case "send":
			var to *memberlist.Node
			for _, n := range m.Members() {
				if n.Name == c.To {
					to = n
				}
			}
			if to == nil {
				reply("sent", fmt.Errorf("no member %q", c.To), nil)
				continue
			}
			if c.Reliable {
				err = m.SendReliable(to, []byte(c.Data))
			} else {
				err = m.SendBestEffort(to, []byte(c.Data))
			}
			reply("sent", err, nil)
		case "broadcast":
			d.queue.QueueBroadcast(broadcast([]byte(c.Data)))
			reply("queued", nil, nil)
		case "set_state":
			d.mu.Lock()
			d.state = []byte(c.Data)
			d.mu.Unlock()
			reply("state_set", nil, nil)
		case "update_meta":
			d.mu.Lock()
			d.meta = []byte(c.Meta)
			d.mu.Unlock()
			reply("updated", m.UpdateNode(time.Duration(c.TimeoutMs)*time.Millisecond), nil)
		case "leave":
			err := m.Leave(time.Duration(c.TimeoutMs) * time.Millisecond)
			m.Shutdown()
			reply("left", err, nil)
		case "key_add", "key_use", "key_remove":
			if keyring == nil {
				reply("key_done", fmt.Errorf("no keyring"), nil)
				continue
			}
			k := []byte(c.Data)
			switch c.Cmd {
			case "key_add":
				err = keyring.AddKey(k)
			case "key_use":
				err = keyring.UseKey(k)
			default:
				err = keyring.RemoveKey(k)
			}
			reply("key_done", err, nil)
		case "crash":
			// No leave, no goodbye: the process just ends.
			os.Exit(0)
		default:
			reply("error", fmt.Errorf("unknown command %q", c.Cmd), nil)
		}
	}
}
