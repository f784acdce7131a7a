// Prints the golden vectors for tests/wire/hashicorp (committed as vectors.txt next to this
// file, so the C++ tests never need Go). Offline, in GOPATH mode against Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go run gen.go > vectors.txt
//
// Each line is "<kind> <name> <fields>...". lzw: the input (hex, "-" = empty, "zeros:N"),
// then what Go's compress/lzw writes for it (hex).
package main

import (
	"bytes"
	"compress/lzw"
	"encoding/hex"
	"fmt"
)

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
}
