package memberlist

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"time"
)

// TCPTransport is an example Transport that carries everything over TCP, with no UDP at all
// (for networks that block UDP), optionally inside TLS (crypto/tls). Datagrams to a peer go
// over one long-lived connection per peer, in order, and are dropped when its queue is full
// or the peer cannot be reached (datagrams are best effort). Each stream message gets a
// connection of its own: the message goes out, the reply (or a "no reply" mark) comes back.
//
// On the wire every message is a frame: a kind byte ('P' datagram, 'S' stream), the sender's
// advertised address (a length byte, then "ip:port"), a 4-byte big-endian length and the
// bytes. A stream's answer is a byte (1 reply, 0 none), then with a reply its length and
// bytes. The library's bytes are already framed and, with a keyring, encrypted: TLS adds
// transport security and peer authentication on top.
type TCPTransport struct {
	ln        net.Listener // the TCP listener (TLS wraps each accepted connection)
	tls       *tls.Config
	packetCh  chan *Packet
	streamCh  chan *Stream
	done      chan struct{}
	wg        sync.WaitGroup // the accept loop, connection readers and peer writers
	mu        sync.Mutex
	advertise string
	peers     map[string]chan []byte // datagram queues by peer address
	conns     map[net.Conn]struct{}  // open connections, closed by Shutdown
	closed    bool
}

const (
	tcpMaxFrame     = 64 << 20 // largest message accepted from a peer
	tcpPeerQueue    = 256      // datagrams queued per peer before they are dropped
	tcpPacketDialTO = 2 * time.Second
)

// ErrTransportClosed is returned by TCPTransport's methods after Shutdown.
var ErrTransportClosed = errors.New("memberlist: transport shut down")

// NewTCPTransport listens on bindAddr ("127.0.0.1:0" picks a port). With tlsConf non-nil every
// connection is TLS: tlsConf serves as the server config of accepted connections and the
// client config of dialed ones (so it needs Certificates, and RootCAs that trust the peers';
// set ClientAuth to require the peers' certificates too). The server name checked is the
// peer's IP, unless tlsConf.ServerName is set.
func NewTCPTransport(bindAddr string, tlsConf *tls.Config) (*TCPTransport, error) {
	ln, err := net.Listen("tcp", bindAddr)
	if err != nil {
		return nil, err
	}
	t := &TCPTransport{ln: ln, tls: tlsConf, packetCh: make(chan *Packet, 256),
		streamCh: make(chan *Stream, 64), done: make(chan struct{}),
		peers: map[string]chan []byte{}, conns: map[net.Conn]struct{}{}}
	t.wg.Add(1)
	go t.accept()
	return t, nil
}

// Addr is the address the transport listens on.
func (t *TCPTransport) Addr() *net.TCPAddr { return t.ln.Addr().(*net.TCPAddr) }

// FinalAdvertiseAddr advertises ip (or the listener's IP) and port (or the listener's port).
func (t *TCPTransport) FinalAdvertiseAddr(ip string, port int) (net.IP, int, error) {
	adv := t.Addr().IP
	if ip != "" {
		if adv = net.ParseIP(ip); adv == nil {
			return nil, 0, fmt.Errorf("memberlist: advertise address %q is not an IP", ip)
		}
	}
	if adv.IsUnspecified() {
		return nil, 0, errors.New("memberlist: listening on all addresses: set an advertise address")
	}
	if port == 0 {
		port = t.Addr().Port
	}
	t.mu.Lock()
	t.advertise = net.JoinHostPort(adv.String(), strconv.Itoa(port))
	t.mu.Unlock()
	return adv, port, nil
}

// self is the address put in our frames.
func (t *TCPTransport) self() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.advertise == "" {
		return t.ln.Addr().String()
	}
	return t.advertise
}

func (t *TCPTransport) frame(kind byte, b []byte) []byte {
	from := t.self()
	f := make([]byte, 0, 6+len(from)+len(b))
	f = append(f, kind, byte(len(from)))
	f = append(f, from...)
	f = binary.BigEndian.AppendUint32(f, uint32(len(b)))
	return append(f, b...)
}

// WriteTo queues the datagram for addr's connection and returns at once.
func (t *TCPTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return time.Time{}, ErrTransportClosed
	}
	q, ok := t.peers[addr]
	if !ok {
		q = make(chan []byte, tcpPeerQueue)
		t.peers[addr] = q
		t.wg.Add(1)
		go t.writer(addr, q)
	}
	t.mu.Unlock()
	select {
	case q <- t.frame('P', b):
		return time.Now(), nil
	default:
		return time.Time{}, fmt.Errorf("memberlist: datagram queue to %s full", addr)
	}
}

// writer sends addr's datagrams over one connection, dialing it again after a failure.
func (t *TCPTransport) writer(addr string, q chan []byte) {
	defer t.wg.Done()
	var conn net.Conn
	defer func() {
		if conn != nil {
			t.drop(conn)
		}
	}()
	for {
		select {
		case <-t.done:
			return
		case f := <-q:
			if conn == nil {
				c, err := t.dial(addr, tcpPacketDialTO)
				if err != nil {
					continue // lost, as a datagram may be
				}
				conn = c
			}
			conn.SetWriteDeadline(time.Now().Add(tcpPacketDialTO))
			if _, err := conn.Write(f); err != nil {
				t.drop(conn)
				conn = nil
			}
		}
	}
}

func (t *TCPTransport) dial(addr string, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if t.tls != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: t.tls}).Dial("tcp", addr)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	if !t.track(c) {
		return nil, ErrTransportClosed
	}
	return c, nil
}

// track registers an open connection; false (and closed) after Shutdown.
func (t *TCPTransport) track(c net.Conn) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		c.Close()
		return false
	}
	t.conns[c] = struct{}{}
	return true
}

func (t *TCPTransport) drop(c net.Conn) {
	t.mu.Lock()
	delete(t.conns, c)
	t.mu.Unlock()
	c.Close()
}

// PacketCh delivers the datagrams received.
func (t *TCPTransport) PacketCh() <-chan *Packet { return t.packetCh }

// StreamCh delivers the stream messages received.
func (t *TCPTransport) StreamCh() <-chan *Stream { return t.streamCh }

// StreamTo sends b over a new connection to addr and waits for the answer.
func (t *TCPTransport) StreamTo(b []byte, addr string, timeout time.Duration) ([]byte, error) {
	deadline := time.Now().Add(timeout)
	c, err := t.dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	defer t.drop(c)
	c.SetDeadline(deadline)
	if _, err := c.Write(t.frame('S', b)); err != nil {
		return nil, err
	}
	r := bufio.NewReader(c)
	has, err := r.ReadByte()
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF // closed without the mark: the connection failed
		}
		return nil, err
	}
	if has == 0 {
		return nil, ErrNoReply
	}
	return readBody(r)
}

func readBody(r *bufio.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	size := binary.BigEndian.Uint32(n[:])
	if size > tcpMaxFrame {
		return nil, fmt.Errorf("memberlist: a %d-byte message is over the limit", size)
	}
	b := make([]byte, size)
	_, err := io.ReadFull(r, b)
	return b, err
}

func (t *TCPTransport) accept() {
	defer t.wg.Done()
	for {
		c, err := t.ln.Accept()
		if err != nil {
			return // closed by Shutdown
		}
		if t.tls != nil {
			c = tls.Server(c, t.tls)
		}
		if !t.track(c) {
			return
		}
		t.wg.Add(1)
		go t.serve(c)
	}
}

// serve reads a connection's frames: datagrams until it closes, or one stream message whose
// connection then belongs to the Stream's Reply.
func (t *TCPTransport) serve(c net.Conn) {
	defer t.wg.Done()
	r := bufio.NewReader(c)
	for {
		kind, err := r.ReadByte()
		var from []byte
		if err == nil {
			var n byte
			if n, err = r.ReadByte(); err == nil {
				from = make([]byte, n)
				_, err = io.ReadFull(r, from)
			}
		}
		var body []byte
		if err == nil {
			body, err = readBody(r)
		}
		if err != nil || (kind != 'P' && kind != 'S') {
			t.drop(c) // closed, broken, garbage or Shutdown
			return
		}
		if kind == 'P' {
			select {
			case t.packetCh <- &Packet{Buf: body, From: AddrString(string(from)), Timestamp: time.Now()}:
			case <-t.done:
				t.drop(c)
				return
			}
			continue
		}
		s := &Stream{Msg: body, From: AddrString(string(from)), Reply: func(reply []byte, ok bool) {
			defer t.drop(c)
			c.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if !ok {
				c.Write([]byte{0})
				return
			}
			f := make([]byte, 0, 5+len(reply))
			f = append(f, 1)
			f = binary.BigEndian.AppendUint32(f, uint32(len(reply)))
			c.Write(append(f, reply...))
		}}
		select {
		case t.streamCh <- s:
		case <-t.done:
			t.drop(c)
		}
		return
	}
}

// Shutdown closes the listener and every connection and waits for the transport's
// goroutines. Idempotent.
func (t *TCPTransport) Shutdown() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.done)
	conns := t.conns
	t.conns = map[net.Conn]struct{}{}
	t.mu.Unlock()
	err := t.ln.Close()
	for c := range conns {
		c.Close()
	}
	t.wg.Wait()
	return err
}
