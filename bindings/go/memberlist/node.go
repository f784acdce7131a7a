package memberlist

/*
#include <memberlist.h>
*/
import "C"

import (
	"net"
	"strconv"
	"unsafe"
)

// NodeStateType is the state of a node (StateAlive, StateSuspect, StateDead, StateLeft).
type NodeStateType int

func (s NodeStateType) String() string {
	switch s {
	case StateAlive:
		return "alive"
	case StateSuspect:
		return "suspect"
	case StateDead:
		return "dead"
	case StateLeft:
		return "left"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Node is a copy of what is known about a member.
type Node struct {
	Name        string
	Addr        net.IP
	Port        uint16
	Meta        []byte // metadata from the node's Config.Meta
	State       NodeStateType
	Incarnation uint32
	PMin        uint8 // minimum protocol version this node understands
	PMax        uint8 // maximum protocol version this node understands
	PCur        uint8 // protocol version this node speaks
	DMin        uint8 // minimum delegate protocol version
	DMax        uint8 // maximum delegate protocol version
	DCur        uint8 // delegate protocol version this node speaks
}

// Address returns "host:port" ("[v6]:port" for IPv6).
func (n *Node) Address() string {
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// String returns the node's name.
func (n *Node) String() string { return n.Name }

// nodeState is the node's ML_STATE_* (it cannot fail on a valid node; DEAD otherwise).
func nodeState(node *C.ml_node) NodeStateType {
	state := C.uint32_t(C.ML_STATE_DEAD)
	C.ml_node_get_state(node, &state)
	return NodeStateType(state)
}

// nodeFromC copies a borrowed ml_node into Go memory.
func nodeFromC(node *C.ml_node) *Node {
	var metaLen C.size_t
	meta := C.ml_node_meta(node, &metaLen)
	var v [6]C.uint8_t
	C.ml_node_versions(node, &v[0])
	n := &Node{
		Name:        C.GoString(C.ml_node_name(node)),
		Addr:        net.ParseIP(C.GoString(C.ml_node_host(node))),
		Port:        uint16(C.ml_node_port(node)),
		State:       nodeState(node),
		Incarnation: uint32(C.ml_node_incarnation(node)),
		PMin:        uint8(v[0]), PMax: uint8(v[1]), PCur: uint8(v[2]),
		DMin: uint8(v[3]), DMax: uint8(v[4]), DCur: uint8(v[5]),
	}
	if meta != nil && metaLen > 0 {
		n.Meta = C.GoBytes(unsafe.Pointer(meta), C.int(metaLen))
	}
	return n
}

// layoutCheck is one row of the generated layout table (layout_g.go).
type layoutCheck struct {
	what     string
	actual   int64
	expected int64
}
