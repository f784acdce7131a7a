package memberlist

/*
#include <stdlib.h>
#include "bridge.h"
*/
import "C"

import (
	"errors"
	"net"
	"os"
	"runtime/cgo"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// Transport lets the application carry the node's bytes (TLS, TCP only, a message bus, an
// in-process queue) instead of the library's own UDP and TCP sockets: Config.Transport. It
// has the shape of hashicorp/memberlist's Transport, adapted to what libmemberlist hands a
// host: the library keeps the timers, framing, encryption and the protocol, and gives the
// transport whole datagrams and whole stream messages, opaque bytes to deliver unchanged.
// The differences from hashicorp's:
//
//   - WriteTo is called on a library thread and must not block (queue the bytes and
//     return); its time.Time result is ignored (the library times its own probes).
//   - DialTimeout (a net.Conn the library would read and write) becomes StreamTo: one
//     message out, the peer's whole reply back. StreamCh carries *Stream, one whole inbound
//     message with a Reply function, instead of net.Conn.
//   - Addresses are the "ip:port" the nodes advertise. A Packet's or Stream's From must be the
//     sender's advertised address (From.String()), not the source port of a connection: the
//     library answers there.
//
// Create calls FinalAdvertiseAddr once, starts goroutines that take PacketCh and StreamCh
// into the library, and Shutdown (or Close) stops them and calls the transport's Shutdown.
// One Transport serves one Memberlist.
type Transport interface {
	// FinalAdvertiseAddr returns the address to advertise, given Config.AdvertiseAddr and
	// Config.AdvertisePort (either may be empty or 0). It must be a specific IP.
	FinalAdvertiseAddr(ip string, port int) (net.IP, int, error)

	// WriteTo sends one datagram to addr. It runs on a library thread and must not block;
	// an error counts as a dropped send (datagrams are best effort). b is the transport's.
	WriteTo(b []byte, addr string) (time.Time, error)

	// PacketCh delivers the datagrams received.
	PacketCh() <-chan *Packet

	// StreamTo sends one stream message to addr and returns the peer's reply (empty if it
	// answered with an empty one). Return ErrNoReply when the peer closed the stream without
	// a reply, an error whose Timeout() is true (or os.ErrDeadlineExceeded) when timeout
	// passed, any other error when the connection failed. It runs on a goroutine of its own
	// and may block up to timeout (Config.TCPTimeout). The library does not say whether the
	// message expects a reply: wait for the peer's answer either way.
	StreamTo(b []byte, addr string, timeout time.Duration) ([]byte, error)

	// StreamCh delivers the stream messages received.
	StreamCh() <-chan *Stream

	// Shutdown stops the transport; called once, when the Memberlist shuts down.
	Shutdown() error
}

// Packet is a datagram the transport received, as hashicorp's Packet.
type Packet struct {
	Buf       []byte    // the datagram, unchanged
	From      net.Addr  // the sender's advertised address ("ip:port" from From.String())
	Timestamp time.Time // kept for hashicorp's shape; the library does not use it
}

// Stream is one whole stream message the transport received (hashicorp hands memberlist a
// net.Conn instead).
type Stream struct {
	Msg  []byte   // the message, unchanged
	From net.Addr // the sender's advertised address
	// Reply carries the library's answer back to the peer: reply with ok true, or ok false
	// for none (close the peer's stream without a reply). The binding calls it exactly once,
	// on a goroutine of its own (so it may block on the network), also when the library
	// refused the message or the Memberlist closed first.
	Reply func(reply []byte, ok bool)
}

// ErrNoReply is what StreamTo returns when the peer closed its stream without a reply.
var ErrNoReply = errors.New("memberlist: the peer closed the stream without a reply")

// addrString is a net.Addr that is just an "ip:port" string (for Packet.From and Stream.From).
type addrString string

func (a addrString) Network() string { return "memberlist" }
func (a addrString) String() string  { return string(a) }

// AddrString returns a net.Addr whose String is addr, for Packet.From and Stream.From.
func AddrString(addr string) net.Addr { return addrString(addr) }

// transportState is what the ml_transport's user_data (a cgo.Handle) refers to. It outlives
// the native memberlist: the handle is deleted after ml_memberlist_destroy.
type transportState struct {
	t       Transport
	st      *callbackState // where a panic in the transport is reported
	timeout time.Duration  // StreamTo's timeout
	handle  cgo.Handle

	ready chan struct{} // closed once m is set (or Create failed: m stays nil)
	quit  chan struct{} // closed by stop: the pumps end

	mu sync.Mutex
	// The Memberlist, until it shuts down: then the injection calls would fail anyway, and
	// dropping it lets the collector free a shut-down Memberlist (the handle keeps ts alive).
	m        *Memberlist
	inbound  map[uint64]*Stream // streams handed to the library, waiting for stream_reply
	next     uint64
	stopOnce sync.Once
	downOnce sync.Once
}

func newTransportState(t Transport, st *callbackState, timeout time.Duration) *transportState {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ts := &transportState{t: t, st: st, timeout: timeout, ready: make(chan struct{}),
		quit: make(chan struct{}), inbound: map[uint64]*Stream{}}
	ts.handle = cgo.NewHandle(ts)
	liveHandles.Add(1)
	return ts
}

// address asks the transport for the address to advertise, as "ip:port".
func (ts *transportState) address(conf *Config) (string, error) {
	var ip net.IP
	var port int
	var err error
	if cbErr := ts.st.guard("Transport.FinalAdvertiseAddr", func() {
		ip, port, err = ts.t.FinalAdvertiseAddr(conf.AdvertiseAddr, conf.AdvertisePort)
	}); cbErr != nil {
		return "", cbErr
	}
	if err != nil {
		return "", err
	}
	if ip == nil || ip.IsUnspecified() || port <= 0 || port > 0xffff {
		return "", &Error{StatusInvalid, "Transport.FinalAdvertiseAddr must return a specific IP and a port"}
	}
	return net.JoinHostPort(ip.String(), strconv.Itoa(port)), nil
}

// set installs the transport in cfg at address.
func (ts *transportState) set(cfg *C.ml_config, address string) error {
	addr, err := cString(address, "address")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(addr))
	return lastError(C.ml_go_set_transport(cfg, C.uintptr_t(ts.handle), addr))
}

// start hands the transport to m (nil: Create failed) and starts the pumps.
func (ts *transportState) start(m *Memberlist) {
	ts.mu.Lock()
	ts.m = m
	ts.mu.Unlock()
	close(ts.ready)
	if m != nil {
		go ts.pumpPackets()
		go ts.pumpStreams()
	}
}

// member waits for start and returns the Memberlist, nil once it shut down.
func (ts *transportState) member() *Memberlist {
	<-ts.ready
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.m
}

func (ts *transportState) pumpPackets() {
	ch := ts.t.PacketCh()
	for {
		select {
		case <-ts.quit:
			return
		case p := <-ch:
			if p == nil || p.From == nil {
				continue
			}
			from, err := cString(p.From.String(), "address")
			if err != nil {
				continue
			}
			var data *C.uint8_t
			if len(p.Buf) > 0 {
				data = (*C.uint8_t)(unsafe.Pointer(&p.Buf[0]))
			}
			// Refusals (garbage, too large, closed) are the library's to count: a datagram may
			// be lost.
			m := ts.member()
			if m == nil {
				C.free(unsafe.Pointer(from))
				return
			}
			_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
				return C.ml_memberlist_transport_packet(ml, from, data, C.size_t(len(p.Buf)))
			})
			C.free(unsafe.Pointer(from))
		}
	}
}

func (ts *transportState) pumpStreams() {
	ch := ts.t.StreamCh()
	for {
		select {
		case <-ts.quit:
			return
		case s := <-ch:
			if s != nil {
				ts.inject(s)
			}
		}
	}
}

// inject hands one inbound stream to the library under a token of ours.
func (ts *transportState) inject(s *Stream) {
	ts.mu.Lock()
	if ts.inbound == nil { // closed
		ts.mu.Unlock()
		ts.reply(s, nil, false)
		return
	}
	ts.next++
	token := ts.next
	ts.inbound[token] = s
	ts.mu.Unlock()
	var err error = &Error{StatusInvalid, "Stream.From is nil"}
	if m := ts.member(); m == nil {
		err = ErrClosed
	} else if s.From != nil {
		if from, e := cString(s.From.String(), "address"); e == nil {
			var data *C.uint8_t
			if len(s.Msg) > 0 {
				data = (*C.uint8_t)(unsafe.Pointer(&s.Msg[0]))
			}
			if e := m.use(func(ml *C.ml_memberlist) C.ml_status {
				return C.ml_memberlist_transport_stream(ml, from, C.uint64_t(token), data, C.size_t(len(s.Msg)))
			}); e == nil {
				err = nil
			}
			C.free(unsafe.Pointer(from))
		}
	}
	if err != nil { // refused: no stream_reply comes, close the peer's stream ourselves
		if s := ts.take(token); s != nil {
			ts.reply(s, nil, false)
		}
	}
}

// take removes an inbound stream (nil if already answered).
func (ts *transportState) take(token uint64) *Stream {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	s := ts.inbound[token]
	delete(ts.inbound, token)
	return s
}

// reply calls s.Reply on a goroutine of its own.
func (ts *transportState) reply(s *Stream, b []byte, ok bool) {
	if s.Reply == nil {
		return
	}
	go ts.st.guard("Stream.Reply", func() { s.Reply(b, ok) })
}

// stop ends the pumps (Shutdown, Close); the library hands the transport nothing more that
// matters.
func (ts *transportState) stop() {
	ts.stopOnce.Do(func() { close(ts.quit) })
}

// shutdown stops the pumps and the transport (once), and lets the Memberlist go.
func (ts *transportState) shutdown() error {
	ts.stop()
	ts.mu.Lock()
	ts.m = nil
	ts.mu.Unlock()
	var err error
	ts.downOnce.Do(func() {
		if cbErr := ts.st.guard("Transport.Shutdown", func() { err = ts.t.Shutdown() }); cbErr != nil {
			err = cbErr
		}
	})
	return err
}

// free runs after ml_memberlist_destroy (or a failed create): no callback comes any more.
// Streams still waiting for an answer are closed without one, and the handle goes.
func (ts *transportState) free() {
	ts.stop()
	ts.mu.Lock()
	pending := ts.inbound
	ts.inbound = nil
	ts.mu.Unlock()
	for _, s := range pending {
		ts.reply(s, nil, false)
	}
	ts.handle.Delete()
	liveHandles.Add(-1)
}

func transportOf(userData C.uintptr_t) *transportState {
	return cgo.Handle(userData).Value().(*transportState)
}

//export goTransportSendPacket
func goTransportSendPacket(userData C.uintptr_t, to *C.char, data *C.uint8_t, n C.size_t) C.int32_t {
	ts := transportOf(userData)
	addr, b := C.GoString(to), goBytes(data, n)
	var err error
	if cbErr := ts.st.guard("Transport.WriteTo", func() { _, err = ts.t.WriteTo(b, addr) }); cbErr != nil || err != nil {
		return 1
	}
	return 0
}

//export goTransportSendStream
func goTransportSendStream(userData C.uintptr_t, to *C.char, token C.uint64_t, data *C.uint8_t, n C.size_t) C.int32_t {
	ts := transportOf(userData)
	addr, b := C.GoString(to), goBytes(data, n)
	go ts.streamTo(addr, uint64(token), b)
	return 0
}

// streamTo runs one outgoing stream and completes its token.
func (ts *transportState) streamTo(addr string, token uint64, b []byte) {
	var reply []byte
	var err error
	if cbErr := ts.st.guard("Transport.StreamTo", func() { reply, err = ts.t.StreamTo(b, addr, ts.timeout) }); cbErr != nil {
		err = cbErr
	}
	status := C.ml_status(C.ML_OK)
	var ne net.Error
	switch {
	case err == nil:
	case errors.Is(err, ErrNoReply):
		status = C.ML_E_REJECTED
	case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		status = C.ML_E_TIMEOUT
	default:
		status = C.ML_E_IO
	}
	if status != C.ML_OK {
		reply = nil
	}
	m := ts.member()
	if m == nil {
		return
	}
	var data *C.uint8_t
	if len(reply) > 0 {
		data = (*C.uint8_t)(unsafe.Pointer(&reply[0]))
	}
	// StatusNotFound (the library stopped waiting: timed out, or no reply needed) and
	// ErrClosed are harmless.
	_ = m.use(func(ml *C.ml_memberlist) C.ml_status {
		return C.ml_memberlist_transport_stream_done(ml, C.uint64_t(token), status, data, C.size_t(len(reply)))
	})
}

//export goTransportStreamReply
func goTransportStreamReply(userData C.uintptr_t, token C.uint64_t, data *C.uint8_t, n C.size_t, hasReply C.uint32_t) {
	ts := transportOf(userData)
	if s := ts.take(uint64(token)); s != nil {
		var b []byte
		if hasReply != 0 {
			b = goBytes(data, n)
		}
		ts.reply(s, b, hasReply != 0)
	}
}
