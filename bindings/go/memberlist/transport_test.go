package memberlist

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingTransport counts what the library hands the transport, to show the bytes went
// through it (the library binds no socket of its own with a Transport).
type countingTransport struct {
	*TCPTransport
	packets, streams atomic.Int64
}

func (c *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	c.packets.Add(1)
	return c.TCPTransport.WriteTo(b, addr)
}

func (c *countingTransport) StreamTo(b []byte, addr string, timeout time.Duration) ([]byte, error) {
	c.streams.Add(1)
	return c.TCPTransport.StreamTo(b, addr, timeout)
}

// msgDelegate sends every user message to a channel (never blocking the library).
type msgDelegate struct{ ch chan []byte }

func (d *msgDelegate) NodeMeta(int) []byte { return nil }
func (d *msgDelegate) NotifyMsg(b []byte) {
	select {
	case d.ch <- b:
	default:
	}
}
func (d *msgDelegate) GetBroadcasts(int, int) [][]byte { return nil }
func (d *msgDelegate) LocalState(bool) []byte          { return nil }
func (d *msgDelegate) MergeRemoteState([]byte, bool)   {}

// waitMsg waits for want on ch (other messages are skipped).
func waitMsg(t *testing.T, what string, ch <-chan []byte, want []byte) {
	t.Helper()
	timer := time.NewTimer(deadline)
	defer timer.Stop()
	for {
		select {
		case b := <-ch:
			if bytes.Equal(b, want) {
				return
			}
		case <-timer.C:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

type transportNode struct {
	m   *Memberlist
	tr  *countingTransport
	ev  *recorder
	msg chan []byte
}

// selfSignedTLS makes a certificate for 127.0.0.1, trusted by itself, that every node uses
// as server and client (mutual TLS). Nothing leaves the process.
func selfSignedTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "memberlist test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}},
		RootCAs:      pool,
		ClientCAs:    pool,
		ClientAuth:   tls.RequireAndVerifyClientCert,
		MinVersion:   tls.VersionTLS13,
	}
}

func newTransportNode(t *testing.T, name string, tlsConf *tls.Config) *transportNode {
	t.Helper()
	tcp, err := NewTCPTransport("127.0.0.1:0", tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	n := &transportNode{tr: &countingTransport{TCPTransport: tcp}, ev: &recorder{}, msg: make(chan []byte, 64)}
	c := fastConfig(name)
	c.Transport = n.tr
	c.Events = n.ev
	c.Delegate = &msgDelegate{ch: n.msg}
	c.SecretKey = []byte("0123456789abcdef") // encryption on top of the transport
	n.m = create(t, c)
	t.Cleanup(func() { tcp.Shutdown() }) // harmless after the Memberlist's own
	if got, want := n.m.LocalNode().Address(), tcp.Addr().String(); got != want {
		t.Fatalf("%s advertises %s, its transport listens on %s", name, got, want)
	}
	return n
}

// A 3-node cluster whose bytes go only through TCPTransport: join, a best-effort and a
// reliable message, a leave, and a node whose transport dies detected as dead.
func runTransportCluster(t *testing.T, tlsConf *tls.Config) {
	a := newTransportNode(t, "tr-a", tlsConf)
	b := newTransportNode(t, "tr-b", tlsConf)
	c := newTransportNode(t, "tr-c", tlsConf)
	seed := a.m.LocalNode().Address()
	for _, n := range []*transportNode{b, c} {
		if joined, err := n.m.Join([]string{seed}); err != nil || joined != 1 {
			t.Fatalf("Join through the transport: %d, %v", joined, err)
		}
	}
	waitFor(t, "three members everywhere", func() bool {
		for _, n := range []*transportNode{a, b, c} {
			if names(n.m) != "tr-a,tr-b,tr-c" {
				return false
			}
		}
		return true
	})
	waitFor(t, "b's join event at c", func() bool { return c.ev.has(NodeJoin, "tr-b", StateAlive) })

	var nb, nc *Node
	for _, n := range a.m.Members() {
		switch n.Name {
		case "tr-b":
			nb = n
		case "tr-c":
			nc = n
		}
	}
	if err := a.m.SendBestEffort(nb, []byte("best-effort a->b")); err != nil {
		t.Fatalf("SendBestEffort: %v", err)
	}
	waitMsg(t, "the best-effort message at b", b.msg, []byte("best-effort a->b"))
	if err := a.m.SendReliable(nc, []byte("reliable a->c")); err != nil {
		t.Fatalf("SendReliable: %v", err)
	}
	waitMsg(t, "the reliable message at c", c.msg, []byte("reliable a->c"))
	// Every node sent datagrams (probes, gossip) and streams (push/pull, the reliable
	// message) through its transport.
	waitFor(t, "datagrams and streams through every transport", func() bool {
		for _, n := range []*transportNode{a, b, c} {
			if n.tr.packets.Load() == 0 || n.tr.streams.Load() == 0 {
				return false
			}
		}
		return true
	})

	// b leaves: the others see it left.
	if err := b.m.Leave(deadline); err != nil {
		t.Fatalf("Leave: %v", err)
	}
	waitFor(t, "b's leave at a and c", func() bool {
		return a.ev.has(NodeLeave, "tr-b", StateLeft) && c.ev.has(NodeLeave, "tr-b", StateLeft)
	})
	if err := b.m.Shutdown(); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	// Shutdown shut b's transport down too (as hashicorp's does).
	if _, err := b.tr.WriteTo([]byte("x"), seed); !errors.Is(err, ErrTransportClosed) {
		t.Errorf("b's transport after Shutdown: %v, want ErrTransportClosed", err)
	}

	// c's transport dies under a running memberlist: a detects c dead.
	c.tr.Shutdown()
	waitFor(t, "c detected dead at a", func() bool { return a.ev.has(NodeLeave, "tr-c", StateDead) })
	waitFor(t, "a alone", func() bool { return names(a.m) == "tr-a" })
}

func TestTransportTCPCluster(t *testing.T) { runTransportCluster(t, nil) }

func TestTransportTLSCluster(t *testing.T) { runTransportCluster(t, selfSignedTLS(t)) }

// fakeTransport answers every stream with streamErr and records what it is asked.
type fakeTransport struct {
	ip        net.IP
	port      int
	advErr    error
	streamErr error
	packets   chan *Packet
	streams   chan *Stream
	shutdowns atomic.Int32
}

func newFake(port int) *fakeTransport {
	return &fakeTransport{ip: net.IPv4(127, 0, 0, 1), port: port, packets: make(chan *Packet),
		streams: make(chan *Stream)}
}

func (f *fakeTransport) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return f.ip, f.port, f.advErr
}
func (f *fakeTransport) WriteTo([]byte, string) (time.Time, error) { return time.Now(), nil }
func (f *fakeTransport) PacketCh() <-chan *Packet                  { return f.packets }
func (f *fakeTransport) StreamTo([]byte, string, time.Duration) ([]byte, error) {
	return nil, f.streamErr
}
func (f *fakeTransport) StreamCh() <-chan *Stream { return f.streams }
func (f *fakeTransport) Shutdown() error {
	f.shutdowns.Add(1)
	return nil
}

func statusOf(err error) Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return StatusOK
}

// StreamTo's errors reach the library as the statuses the C ABI names: a peer that closed
// without a reply is a rejection (Join: StatusRejected), a deadline a timeout (StatusTimeout),
// anything else a failed connection (StatusIO); the message says it was the transport's.
func TestTransportStreamErrors(t *testing.T) {
	for i, tc := range []struct {
		err  error
		want Status
		text string
	}{
		{ErrNoReply, StatusRejected, "closed the connection right after our message"},
		{os.ErrDeadlineExceeded, StatusTimeout, "the host transport failed the stream to 127.0.0.1:17999: it reported a timeout"},
		{errors.New("no route"), StatusIO, "the host transport failed the stream to 127.0.0.1:17999: it completed the stream with status -11"},
	} {
		f := newFake(17001 + i)
		f.streamErr = tc.err
		c := fastConfig(fmt.Sprintf("fake-%d", i))
		c.Transport = f
		m := create(t, c)
		_, err := m.Join([]string{"127.0.0.1:17999"})
		if statusOf(err) != tc.want || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("StreamTo failing with %v: Join returned %v, want %v saying %q", tc.err, err, tc.want, tc.text)
		}
	}
}

// A Create that fails leaves the transport running (the caller's) and leaks no handle.
func TestTransportCreateFailure(t *testing.T) {
	before := liveHandles.Load()
	f := newFake(17010)
	f.advErr = errors.New("no address for you")
	c := fastConfig("fake-fail")
	c.Transport = f
	if _, err := Create(c); err == nil || err.Error() != "no address for you" {
		t.Errorf("Create with FinalAdvertiseAddr failing: %v", err)
	}
	f.advErr, f.ip = nil, net.IPv4zero
	if _, err := Create(c); statusOf(err) != StatusInvalid {
		t.Errorf("Create advertising 0.0.0.0: %v, want StatusInvalid", err)
	}
	if n := f.shutdowns.Load(); n != 0 {
		t.Errorf("a failed Create shut the transport down %d times", n)
	}
	if liveHandles.Load() != before {
		t.Errorf("handles leaked: %d, want %d", liveHandles.Load(), before)
	}
}

// Garbage through the transport is refused without a crash; every inbound stream gets
// exactly one Reply; Close shuts the transport down once and frees the handles.
func TestTransportGarbageAndClose(t *testing.T) {
	before := liveHandles.Load()
	f := newFake(17011)
	c := fastConfig("fake-garbage")
	c.Transport = f
	m, err := Create(c)
	if err != nil {
		t.Fatal(err)
	}
	f.packets <- &Packet{Buf: []byte("not a memberlist datagram"), From: AddrString("127.0.0.1:17998")}
	f.packets <- &Packet{Buf: nil, From: AddrString("not an address")}
	replies := make(chan bool, 4)
	reply := func(_ []byte, ok bool) { replies <- ok }
	f.streams <- &Stream{Msg: []byte("\xff\xffgarbage"), From: AddrString("127.0.0.1:17998"), Reply: reply}
	f.streams <- &Stream{Msg: []byte("x"), From: AddrString("bad address"), Reply: reply}
	for i := 0; i < 2; i++ {
		select {
		case ok := <-replies:
			if ok {
				t.Errorf("garbage stream %d answered with a reply", i)
			}
		case <-time.After(deadline):
			t.Fatalf("garbage stream %d never answered", i)
		}
	}
	if m.NumMembers() != 1 {
		t.Errorf("%d members after garbage", m.NumMembers())
	}
	m.Close()
	// A pump may still be inside a call: the last call out frees the handles.
	waitFor(t, "the handles freed after Close", func() bool { return liveHandles.Load() == before })
	if n := f.shutdowns.Load(); n != 1 {
		t.Errorf("Close shut the transport down %d times, want 1", n)
	}
	select {
	case ok := <-replies:
		t.Errorf("a stream answered twice (%v)", ok)
	default:
	}
}

// A shut-down Memberlist with a Transport is still freed by the collector (the transport's
// handle does not keep it alive), and its transport was shut down once.
func TestTransportFinalizer(t *testing.T) {
	before := liveHandles.Load()
	f := newFake(17012)
	func() {
		c := fastConfig("fake-fin")
		c.Transport = f
		m, err := Create(c)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Shutdown(); err != nil {
			t.Fatal(err)
		}
	}()
	waitFor(t, "the shut-down node freed by the collector", func() bool {
		runtime.GC()
		return liveHandles.Load() == before
	})
	if n := f.shutdowns.Load(); n != 1 {
		t.Errorf("the transport was shut down %d times, want 1", n)
	}
}

// A node whose bytes go over TCP only, inside mutual TLS (tlsConf holds the node's
// certificate and the CA that signed its peers').
func ExampleTCPTransport() {
	var tlsConf *tls.Config // e.g. Certificates, RootCAs, ClientCAs, ClientAuth: tls.RequireAndVerifyClientCert
	tr, err := NewTCPTransport("10.0.0.1:7946", tlsConf)
	if err != nil {
		return
	}
	conf := DefaultLANConfig()
	conf.Name, conf.Transport = "node-a", tr
	list, err := Create(conf)
	if err != nil {
		tr.Shutdown() // a failed Create leaves the transport to its owner
		return
	}
	defer list.Close() // shuts the transport down too
	list.Join([]string{"10.0.0.2:7946"})
}
