// Prints the golden vectors for tests/wire/hashicorp (committed as vectors.txt next to this
// file, so the C++ tests never need Go). Offline, in GOPATH mode against Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run gen.go > vectors.txt
//
// Each line is "<kind> <name> <fields>...". lzw: the input (hex, "-" = empty, "zeros:N"),
// then what Go's compress/lzw writes for it (hex). msg: one message as memberlist 0.2.2
// puts it on the wire (hex), type byte first. enc: version, key, associated data ("-" =
// none), plaintext, encryptPayload's output (hex; the nonce is fixed here so the file is
// reproducible, memberlist draws it from crypto/rand). frame: a framed datagram or stream
// message (hex).
//
// memberlist's encode() and its message structs are unexported, so this file mirrors them:
// the structs below are copied field for field (names, types, tags) from net.go of 0.2.2,
// and encode() does what util.go's encode() does (type byte, then a zero-value
// codec.MsgpackHandle from the same hashicorp/go-msgpack package). Stream messages are built
// as net.go's sendLocalState, sendUserMsg and compressPayload build them.
package main

import (
	"bytes"
	"compress/lzw"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"net"
	"strings"

	"github.com/hashicorp/go-msgpack/codec"
)

// Message types and structs as in memberlist 0.2.2 net.go.
const (
	pingMsg         = 0
	indirectPingMsg = 1
	ackRespMsg      = 2
	suspectMsg      = 3
	aliveMsg        = 4
	deadMsg         = 5
	pushPullMsg     = 6
	compoundMsg     = 7
	userMsg         = 8
	compressMsg     = 9
	nackRespMsg     = 11
	errMsg          = 13
)

type ping struct {
	SeqNo uint32

	Node string

	SourceAddr []byte `codec:",omitempty"`
	SourcePort uint16 `codec:",omitempty"`
	SourceNode string `codec:",omitempty"`
}

type indirectPingReq struct {
	SeqNo  uint32
	Target []byte
	Port   uint16

	Node string

	Nack bool

	SourceAddr []byte `codec:",omitempty"`
	SourcePort uint16 `codec:",omitempty"`
	SourceNode string `codec:",omitempty"`
}

type ackResp struct {
	SeqNo   uint32
	Payload []byte
}

type nackResp struct {
	SeqNo uint32
}

type errResp struct {
	Error string
}

type suspect struct {
	Incarnation uint32
	Node        string
	From        string
}

type alive struct {
	Incarnation uint32
	Node        string
	Addr        []byte
	Port        uint16
	Meta        []byte

	Vsn []uint8
}

type dead struct {
	Incarnation uint32
	Node        string
	From        string
}

type pushPullHeader struct {
	Nodes        int
	UserStateLen int
	Join         bool
}

type userMsgHeader struct {
	UserMsgLen int
}

type NodeStateType int

const (
	StateAlive NodeStateType = iota
	StateSuspect
	StateDead
	StateLeft
)

type pushNodeState struct {
	Name        string
	Addr        []byte
	Port        uint16
	Meta        []byte
	Incarnation uint32
	State       NodeStateType
	Vsn         []uint8
}

type compress struct {
	Algo uint8
	Buf  []byte
}

// A ping from some later memberlist version: keys 0.2.2 does not know, before and after
// the known ones. Decoders skip them.
type pingFromTheFuture struct {
	AAAFirst []string
	Node     string
	SeqNo    uint32
	ZZZLast  map[string]interface{}
}

// As util.go's encode().
func encode(msgType uint8, in interface{}) []byte {
	buf := bytes.NewBuffer(nil)
	buf.WriteByte(msgType)
	hd := codec.MsgpackHandle{}
	enc := codec.NewEncoder(buf, &hd)
	if err := enc.Encode(in); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// Appends more msgpack objects with the same handle (as a stream writer does).
func encodeMore(buf []byte, objs ...interface{}) []byte {
	b := bytes.NewBuffer(buf)
	hd := codec.MsgpackHandle{}
	enc := codec.NewEncoder(b, &hd)
	for _, o := range objs {
		if err := enc.Encode(o); err != nil {
			panic(err)
		}
	}
	return b.Bytes()
}

// As util.go's makeCompoundMessage.
func makeCompoundMessage(msgs [][]byte) []byte {
	buf := bytes.NewBuffer(nil)
	buf.WriteByte(compoundMsg)
	buf.WriteByte(uint8(len(msgs)))
	for _, m := range msgs {
		binary.Write(buf, binary.BigEndian, uint16(len(m)))
	}
	for _, m := range msgs {
		buf.Write(m)
	}
	return buf.Bytes()
}

func printMsg(name string, b []byte) {
	fmt.Printf("msg %s %s\n", name, hex.EncodeToString(b))
}

func ip4(s string) []byte  { return net.ParseIP(s).To4() }
func ip16(s string) []byte { return net.ParseIP(s).To16() }

var vsn = []uint8{1, 5, 2, 0, 0, 0}

func messages() {
	pingMin := encode(pingMsg, &ping{SeqNo: 1, Node: "n2"})
	printMsg("ping_min", pingMin)
	printMsg("ping_source", encode(pingMsg, &ping{SeqNo: 1, Node: "n2", SourceAddr: ip4("10.0.0.1"), SourcePort: 7946, SourceNode: "n1"}))
	printMsg("ping_source_v6", encode(pingMsg, &ping{SeqNo: 4000000000, Node: "", SourceAddr: ip16("fd00::1"), SourcePort: 65535, SourceNode: "n1"}))
	printMsg("indirect_ping", encode(indirectPingMsg, &indirectPingReq{SeqNo: 300, Target: ip4("10.0.0.1"), Port: 7946, Node: "n3", Nack: true,
		SourceAddr: ip4("10.0.0.2"), SourcePort: 7947, SourceNode: "n1"}))
	printMsg("indirect_ping_plain", encode(indirectPingMsg, &indirectPingReq{SeqNo: 7, Target: ip16("fd00::3"), Port: 80, Node: "n3"}))
	printMsg("ack_nil", encode(ackRespMsg, &ackResp{SeqNo: 1}))
	printMsg("ack_payload", encode(ackRespMsg, &ackResp{SeqNo: 70000, Payload: []byte("hello")}))
	printMsg("nack", encode(nackRespMsg, &nackResp{SeqNo: 70000}))
	suspectMsgBytes := encode(suspectMsg, &suspect{Incarnation: 2, Node: "n2", From: "n1"})
	printMsg("suspect", suspectMsgBytes)
	printMsg("alive", encode(aliveMsg, &alive{Incarnation: 1, Node: "n1", Addr: ip4("10.0.0.1"), Port: 7946, Vsn: vsn}))
	printMsg("alive_meta_v6_long_name", encode(aliveMsg, &alive{Incarnation: 300, Node: strings.Repeat("node-", 8),
		Addr: ip16("fd00::1"), Port: 7946, Meta: []byte("role=web"), Vsn: []uint8{1, 5, 3, 2, 4, 3}}))
	printMsg("dead_leave", encode(deadMsg, &dead{Incarnation: 3, Node: "n1", From: "n1"}))
	printMsg("dead", encode(deadMsg, &dead{Incarnation: 5, Node: "n2", From: "n1"}))
	printMsg("err", encode(errMsg, &errResp{Error: "x"}))

	// Push/pull as sendLocalState writes it: type byte, header, node states, user state.
	userState := bytes.Repeat([]byte("s"), 300)
	nodes := []pushNodeState{
		{Name: "n1", Addr: ip4("10.0.0.1"), Port: 7946, Meta: []byte("m"), Incarnation: 1, State: StateAlive, Vsn: vsn},
		{Name: "n2", Addr: ip16("fd00::2"), Port: 7947, Incarnation: 9, State: StateSuspect, Vsn: vsn},
		{Name: "n3", Addr: ip4("10.0.0.3"), Port: 7948, Incarnation: 2, State: StateDead, Vsn: vsn},
		{Name: "n4", Addr: ip4("10.0.0.4"), Port: 7949, Incarnation: 4, State: StateLeft, Vsn: vsn},
	}
	pp := encodeMore([]byte{pushPullMsg}, &pushPullHeader{Nodes: len(nodes), UserStateLen: len(userState), Join: true})
	for i := range nodes {
		pp = encodeMore(pp, &nodes[i])
	}
	printMsg("push_pull", append(pp, userState...))
	printMsg("push_pull_empty", encodeMore([]byte{pushPullMsg}, &pushPullHeader{}))

	// User messages: raw after the type byte in a datagram (SendBestEffort); with a
	// userMsgHeader on a stream (sendUserMsg).
	printMsg("user_packet", append([]byte{userMsg}, "hello"...))
	printMsg("user_stream", append(encodeMore([]byte{userMsg}, &userMsgHeader{UserMsgLen: 5}), "hello"...))

	printMsg("compound", makeCompoundMessage([][]byte{pingMin, suspectMsgBytes}))
	// As compressPayload.
	printMsg("compressed_ping", encode(compressMsg, &compress{Algo: 0, Buf: lzwCompress(pingMin)}))

	printMsg("ping_future_keys", encode(pingMsg, &pingFromTheFuture{AAAFirst: []string{"a", "b"}, Node: "n2", SeqNo: 1,
		ZZZLast: map[string]interface{}{"k": 1}}))
}

// As memberlist's util.go: lzw.NewWriter(&buf, lzw.LSB, lzwLitWidth) with lzwLitWidth = 8.
func lzwCompress(in []byte) []byte {
	var buf bytes.Buffer
	w := lzw.NewWriter(&buf, lzw.LSB, 8)
	if _, err := w.Write(in); err != nil {
		panic(err)
	}
	if err := w.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

// A fixed pseudo-random sequence (xorshift32), so the inputs are reproducible.
func noise(n int, seed uint32, alphabet int) []byte {
	out := make([]byte, n)
	x := seed
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(int(x%uint32(alphabet)) & 0xff)
	}
	return out
}

func printLzw(name string, in []byte) {
	fmt.Printf("lzw %s %s %s\n", name, inputField(in), hex.EncodeToString(lzwCompress(in)))
}

// The input as hex; "-" when empty, and "zeros:N" for N zero bytes (keeps the file small).
func inputField(in []byte) string {
	if len(in) > 64 && bytes.Count(in, []byte{0}) == len(in) {
		return fmt.Sprintf("zeros:%d", len(in))
	}
	return hexOrDash(in)
}

// An empty field would break the line format.
func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

// As security.go's encryptPayload, with the nonce passed in instead of read from crypto/rand.
func encryptPayload(vsn uint8, key, msg, data, nonce []byte) []byte {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	src := msg
	if vsn == 0 { // pkcs7encode: pad to the block size, 1..16 bytes of the pad length
		more := aes.BlockSize - len(msg)%aes.BlockSize
		src = append(append([]byte{}, msg...), bytes.Repeat([]byte{byte(more)}, more)...)
	}
	out := append([]byte{vsn}, nonce...)
	return append(out, gcm.Seal(nil, nonce, src, data)...)
}

// As rawSendMsgPacket's CRC step (peers with protocol version 5).
func addCrc(msg []byte) []byte {
	header := make([]byte, 5, 5+len(msg))
	header[0] = 12 // hasCrcMsg
	binary.BigEndian.PutUint32(header[1:], crc32.ChecksumIEEE(msg))
	return append(header, msg...)
}

// The label header of memberlist v0.3.0+ (label.go): [244][len][label].
func addLabel(label string, msg []byte) []byte {
	return append(append([]byte{244, byte(len(label))}, label...), msg...)
}

// As encryptLocalState (v0.3.0+ adds the label to the associated data):
// [10][length u32 BE][encrypted], the first five bytes and the label authenticated.
func encryptStream(vsn uint8, key, msg []byte, label string, nonce []byte) []byte {
	n := 1 + 12 + len(msg) + 16
	if vsn == 0 {
		n += aes.BlockSize - len(msg)%aes.BlockSize
	}
	header := []byte{10, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(header[1:], uint32(n))
	aad := append(append([]byte{}, header...), label...)
	return append(header, encryptPayload(vsn, key, msg, aad, nonce)...)
}

func printEnc(name string, vsn uint8, key, aad, pt, out []byte) {
	fmt.Printf("enc %s %d %s %s %s %s\n", name, vsn, hex.EncodeToString(key), hexOrDash(aad), hexOrDash(pt), hex.EncodeToString(out))
}

func seq(n int, from byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

func framing() {
	pingMin := encode(pingMsg, &ping{SeqNo: 1, Node: "n2"})
	nonce := seq(12, 0xa0)
	k16, k24, k32 := seq(16, 1), seq(24, 0x20), seq(32, 0x40)
	printMsg("crc_ping", addCrc(pingMin))
	printEnc("v1_k16", 1, k16, nil, pingMin, encryptPayload(1, k16, pingMin, nil, nonce))
	printEnc("v0_k16", 0, k16, nil, pingMin, encryptPayload(0, k16, pingMin, nil, nonce))
	printEnc("v0_k24_block", 0, k24, nil, seq(32, 0), encryptPayload(0, k24, seq(32, 0), nil, nonce))
	printEnc("v1_k32_label", 1, k32, []byte("prod"), pingMin, encryptPayload(1, k32, pingMin, []byte("prod"), nonce))
	printEnc("v1_k16_empty", 1, k16, nil, nil, encryptPayload(1, k16, nil, nil, nonce))
	// A datagram through the whole send path: CRC, encryption (the label as associated
	// data), label header.
	fmt.Printf("frame packet_label_crc_v1 %s\n", hex.EncodeToString(addLabel("prod", encryptPayload(1, k16, addCrc(pingMin), []byte("prod"), nonce))))
	// Stream messages: compressPayload (always, on streams) then encryptLocalState.
	compressed := encode(compressMsg, &compress{Algo: 0, Buf: lzwCompress(pingMin)})
	fmt.Printf("frame stream_v1_label %s\n", hex.EncodeToString(encryptStream(1, k16, pingMin, "prod", nonce)))
	fmt.Printf("frame stream_v0_compressed %s\n", hex.EncodeToString(encryptStream(0, k32, compressed, "", nonce)))
}

func main() {
	printLzw("empty", nil)
	printLzw("one_byte", []byte{0x41})
	printLzw("tobeornot", []byte("TOBEORNOTTOBEORTOBEORNOT"))
	printLzw("repeat_kwkwk", []byte("abababababababababababab"))
	printLzw("zeros_1000", make([]byte, 1000))
	all := make([]byte, 0, 1024)
	for r := 0; r < 4; r++ {
		for i := 0; i < 256; i++ {
			all = append(all, byte(i))
		}
	}
	printLzw("all_bytes_x4", all)
	// Enough distinct strings to grow the code width to 12 bits and make the writer emit
	// Clear when the table fills (several times for the larger one).
	printLzw("noise_5000_a16", noise(5000, 1, 16))
	printLzw("noise_12000_a256", noise(12000, 7, 256))
	printLzw("zeros_100000", make([]byte, 100000))
	messages()
	framing()
}
