// memberlist-bench-go: the benchmark scenarios of tools/bench run against hashicorp/memberlist
// (Debian's golang-github-hashicorp-memberlist-dev, v0.2.2). N nodes live in this one process on
// 127.0.0.1 (kernel-chosen ports). The scenarios and the JSON lines printed on stdout are the
// same as those of ../c/bench.cpp; tools/bench/run.py runs both and compares them.
//
// Build (GOPATH mode, no network):
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o memberlist-bench-go ./tools/bench/go
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/ioutil"
	"log"
	"math/rand"
	"net"
	"os"
	"runtime/debug"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	metrics "github.com/armon/go-metrics"
	"github.com/hashicorp/memberlist"
)

// ---- byte counting: a Transport wrapper around memberlist's own NetTransport -------------

var wireBytes int64 // payload bytes written to UDP datagrams and TCP streams, all nodes

type countingConn struct{ net.Conn }

func (c countingConn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	atomic.AddInt64(&wireBytes, int64(n))
	return n, err
}

// countingTransport embeds *NetTransport (so it stays a NodeAwareTransport) and counts every
// byte sent: datagrams, dialed streams and the answers written on accepted streams.
type countingTransport struct {
	*memberlist.NetTransport
	streams chan net.Conn
}

func newCountingTransport(nt *memberlist.NetTransport) *countingTransport {
	t := &countingTransport{NetTransport: nt, streams: make(chan net.Conn)}
	go func() {
		for c := range nt.StreamCh() {
			t.streams <- countingConn{c}
		}
	}()
	return t
}

func (t *countingTransport) StreamCh() <-chan net.Conn { return t.streams }

func (t *countingTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	ts, err := t.NetTransport.WriteTo(b, addr)
	if err == nil {
		atomic.AddInt64(&wireBytes, int64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	ts, err := t.NetTransport.WriteToAddress(b, a)
	if err == nil {
		atomic.AddInt64(&wireBytes, int64(len(b)))
	}
	return ts, err
}

func (t *countingTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialTimeout(addr, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{c}, nil
}

func (t *countingTransport) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	c, err := t.NetTransport.DialAddressTimeout(a, timeout)
	if err != nil {
		return nil, err
	}
	return countingConn{c}, nil
}

// ---- the tracker: who knows whom, and when -----------------------------------------------

type point struct {
	t     float64
	known int
}

type tracker struct {
	mu      sync.Mutex
	t0      time.Time
	n       int
	known   [][]bool // known[observer][member]: member seen alive (join event) and not since gone
	total   int
	curve   []point // (time, total) after each change, while recording
	record  bool
	fullAt  float64 // first time total == n*n, or -1
	watch   int     // node whose leave/death is being timed, or -1
	goneAt  []float64
	bcastAt []float64 // first delivery of the user broadcast per node, or -1
	// -broadcasts K > 1: bcastGot[node][k] set when node got "bench-broadcast-<k+1>"
	bcastGot  [][]bool
	bcastLast float64   // time of the last first-delivery of any of them
	pushPulls []float64 // times of periodic push/pulls (each seen at both ends)
	// soak: every leave event about anybody (no node stops during a soak, so each is false)
	countGone       bool
	goneEvents      int
	goneLog         []string // the first few, "observer saw member gone at t"
	holding         bool
	minTotalHolding int
}

func newTracker(n int) *tracker {
	tr := &tracker{n: n, fullAt: -1, watch: -1, t0: time.Now()}
	tr.known = make([][]bool, n)
	for i := range tr.known {
		tr.known[i] = make([]bool, n)
	}
	return tr
}

func (tr *tracker) since() float64 { return time.Since(tr.t0).Seconds() }

func nodeIndex(name string) int {
	i, err := strconv.Atoi(strings.TrimPrefix(name, "n"))
	if err != nil {
		return -1
	}
	return i
}

func (tr *tracker) set(obs, member int, on bool) {
	if member < 0 || member >= tr.n || tr.known[obs][member] == on {
		return
	}
	tr.known[obs][member] = on
	if on {
		tr.total++
	} else {
		tr.total--
	}
	t := tr.since()
	if tr.record {
		tr.curve = append(tr.curve, point{t, tr.total})
	}
	if tr.holding && tr.total < tr.minTotalHolding {
		tr.minTotalHolding = tr.total
	}
	if tr.total == tr.n*tr.n && tr.fullAt < 0 {
		tr.fullAt = t
	}
}

// events is one node's EventDelegate. memberlist 0.2.2 calls it under its node lock, so it
// only records.
type events struct {
	tr  *tracker
	obs int
}

func (e *events) NotifyJoin(n *memberlist.Node) {
	e.tr.mu.Lock()
	e.tr.set(e.obs, nodeIndex(n.Name), true)
	e.tr.mu.Unlock()
}

func (e *events) NotifyLeave(n *memberlist.Node) {
	tr := e.tr
	tr.mu.Lock()
	defer tr.mu.Unlock()
	m := nodeIndex(n.Name)
	tr.set(e.obs, m, false)
	if tr.countGone {
		tr.goneEvents++
		if len(tr.goneLog) < 20 {
			tr.goneLog = append(tr.goneLog, fmt.Sprintf("n%d saw n%d gone at %.3f", e.obs, m, tr.since()))
		}
	}
	// memberlist 0.2.2 never fills Node.State (nodeState shadows it), so dead and left cannot
	// be told apart here; each scenario watches a node that can only go one way.
	if m == tr.watch && m >= 0 && tr.goneAt[e.obs] < 0 {
		tr.goneAt[e.obs] = tr.since()
	}
}

func (e *events) NotifyUpdate(*memberlist.Node) {}

// ---- user broadcasts (Delegate): re-broadcast once on first delivery, as Serf does -------

type userBcast struct{ msg []byte }

func (b *userBcast) Invalidates(memberlist.Broadcast) bool { return false }
func (b *userBcast) Message() []byte                       { return b.msg }
func (b *userBcast) Finished()                             {}

type delegate struct {
	tr    *tracker
	obs   int
	queue *memberlist.TransmitLimitedQueue
}

func (d *delegate) NodeMeta(int) []byte { return nil }

// LocalState runs on both ends of every push/pull; periodic ones (join=false) are timed to
// show when anti-entropy, rather than gossip, completes convergence.
func (d *delegate) LocalState(join bool) []byte {
	if !join {
		tr := d.tr
		tr.mu.Lock()
		if tr.record && len(tr.pushPulls) < 100 {
			tr.pushPulls = append(tr.pushPulls, round3(tr.since()))
		}
		tr.mu.Unlock()
	}
	return nil
}
func (d *delegate) MergeRemoteState([]byte, bool)   {}
func (d *delegate) GetBroadcasts(o, l int) [][]byte { return d.queue.GetBroadcasts(o, l) }
func (d *delegate) NotifyMsg(b []byte) {
	tr := d.tr
	tr.mu.Lock()
	first := tr.bcastAt != nil && tr.bcastAt[d.obs] < 0
	if first {
		tr.bcastAt[d.obs] = tr.since()
	}
	if tr.bcastGot != nil {
		// one forward per message on its first delivery here
		k, err := strconv.Atoi(strings.TrimPrefix(string(b), "bench-broadcast-"))
		first = err == nil && k >= 1 && k <= len(tr.bcastGot[d.obs]) && !tr.bcastGot[d.obs][k-1]
		if first {
			tr.bcastGot[d.obs][k-1] = true
			tr.bcastLast = tr.since()
		}
	}
	tr.mu.Unlock()
	if first {
		d.queue.QueueBroadcast(&userBcast{append([]byte(nil), b...)})
	}
}

// ---- suspicions: memberlist.msg.suspect through a go-metrics sink -------------------------

// suspectSink counts memberlist's "memberlist.msg.suspect" counter (incremented, as in ours,
// each time a node marks an alive member suspect). Installed only for the soak scenario.
type suspectSink struct{ metrics.BlackholeSink }

var suspicions int64

func isSuspect(key []string) bool {
	n := len(key)
	return n >= 3 && key[n-1] == "suspect" && key[n-2] == "msg" && key[n-3] == "memberlist"
}
func (*suspectSink) IncrCounter(key []string, val float32) {
	if isSuspect(key) {
		atomic.AddInt64(&suspicions, int64(val))
	}
}
func (s *suspectSink) IncrCounterWithLabels(key []string, val float32, _ []metrics.Label) {
	s.IncrCounter(key, val)
}

// ---- warnings, counted by their text with digits removed (names, ports, counts), so that a
// soak can say which limit was hit. Only soaks install it (memberlist logs at every level).

type warnCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

var warns *warnCounter // nil: logs are discarded

func (w *warnCounter) Write(b []byte) (int, error) {
	for _, line := range strings.Split(string(b), "\n") {
		i := strings.Index(line, "[WARN]")
		if i < 0 {
			i = strings.Index(line, "[ERR]")
		}
		if i < 0 {
			continue
		}
		key := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return -1
			}
			return r
		}, line[i:])
		if len(key) > 60 {
			key = key[:60]
		}
		w.mu.Lock()
		w.m[key]++
		w.mu.Unlock()
	}
	return len(b), nil
}

// logToStderr (-log): every log line also goes to stderr with the node and the time since the
// scenario started (to see what the protocol did, e.g. during detect).
var logToStderr bool

type stderrLog struct {
	tr  *tracker
	obs int
}

func (l stderrLog) Write(b []byte) (int, error) {
	l.tr.mu.Lock()
	t := l.tr.since()
	l.tr.mu.Unlock()
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if i := strings.Index(line, "["); i >= 0 {
			line = line[i:] // drop the wall-clock prefix
		}
		fmt.Fprintf(os.Stderr, "%9.3f n%d %s\n", t, l.obs, line)
	}
	return len(b), nil
}

func logSink(tr *tracker, obs int) io.Writer {
	var sinks []io.Writer
	if warns != nil {
		sinks = append(sinks, warns)
	}
	if logToStderr && tr != nil {
		sinks = append(sinks, stderrLog{tr, obs})
	}
	if len(sinks) == 0 {
		return ioutil.Discard
	}
	return io.MultiWriter(sinks...)
}

func (w *warnCounter) snapshot() map[string]int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int64{}
	for k, v := range w.m {
		out[k] = v
	}
	return out
}

// ---- output --------------------------------------------------------------------------------

type output struct {
	impl, preset string
	n            int
}

func (o *output) emit(kind string, fields map[string]interface{}) {
	fields["type"] = kind
	fields["impl"] = o.impl
	fields["preset"] = o.preset
	fields["n"] = o.n
	b, _ := json.Marshal(fields)
	fmt.Println(string(b))
}

func (o *output) result(scenario, status string, fields map[string]interface{}) {
	if fields == nil {
		fields = map[string]interface{}{}
	}
	fields["scenario"] = scenario
	fields["status"] = status
	o.emit("result", fields)
}

// curve samples the (time, known pairs) log into at most maxPoints points (fraction of n*n).
func curvePoints(c []point, n int, maxPoints int) [][2]float64 {
	var out [][2]float64
	step := 1
	if len(c) > maxPoints {
		step = (len(c) + maxPoints - 1) / maxPoints
	}
	for i := 0; i < len(c); i += step {
		out = append(out, [2]float64{round3(c[i].t), float64(c[i].known) / float64(n*n)})
	}
	if len(c) > 0 && (len(c)-1)%step != 0 {
		last := c[len(c)-1]
		out = append(out, [2]float64{round3(last.t), float64(last.known) / float64(n*n)})
	}
	return out
}

func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// ---- process measurements ------------------------------------------------------------------

// raiseNofile sets the soft descriptor limit to the hard one (many nodes need many sockets).
func raiseNofile() uint64 {
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) != nil {
		return 0
	}
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	return rl.Cur
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// A "Key:   123 kB" line of /proc/self/status: VmRSS (all resident pages) or RssAnon (the
// process's own memory, without the file-backed pages of its code).
func rssKiB() int64  { return statusKiB("VmRSS:") }
func anonKiB() int64 { return statusKiB("RssAnon:") }

func statusKiB(key string) int64 {
	b, err := ioutil.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, key) {
			f := strings.Fields(line)
			v, _ := strconv.ParseInt(f[1], 10, 64)
			return v
		}
	}
	return -1
}

// ---- cluster -------------------------------------------------------------------------------

func newConfig(preset string, name string, tr *tracker, obs int) *memberlist.Config {
	var c *memberlist.Config
	switch preset {
	case "lan":
		c = memberlist.DefaultLANConfig()
	default:
		c = memberlist.DefaultLocalConfig()
	}
	c.Name = name
	c.BindAddr = "127.0.0.1"
	c.BindPort = 0
	c.AdvertiseAddr = ""
	c.LogOutput = logSink(tr, obs)
	return c
}

// create starts node i on a kernel-chosen port with a counting transport.
func create(preset string, i int, tr *tracker, retransmitMult int) (*memberlist.Memberlist, *delegate, error) {
	c := newConfig(preset, fmt.Sprintf("n%d", i), tr, i)
	if retransmitMult > 0 {
		c.RetransmitMult = retransmitMult
	}
	var nt *memberlist.NetTransport
	var err error
	for try := 0; try < 10; try++ { // port 0: TCP and UDP must get the same port; retry races
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{c.BindAddr}, BindPort: 0,
			Logger: log.New(logSink(tr, i), "", 0)})
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, err
	}
	c.BindPort = nt.GetAutoBindPort()
	c.AdvertisePort = c.BindPort
	c.Transport = newCountingTransport(nt)
	c.Events = &events{tr: tr, obs: i}
	d := &delegate{tr: tr, obs: i}
	d.queue = &memberlist.TransmitLimitedQueue{RetransmitMult: c.RetransmitMult}
	c.Delegate = d
	m, err := memberlist.Create(c)
	if err != nil {
		return nil, nil, err
	}
	d.queue.NumNodes = m.NumMembers
	return m, d, nil
}

// pushPullRandom exchanges state with one random other member: Join runs exactly one push/pull
// per address (with join=true, which only changes what delegates are told).
func pushPullRandom(m *memberlist.Memberlist) {
	var peers []string
	for _, p := range m.Members() {
		if p.Name != m.LocalNode().Name {
			peers = append(peers, p.Address())
		}
	}
	if len(peers) > 0 {
		m.Join([]string{peers[rand.Intn(len(peers))]})
	}
}

// median of xs, nil (JSON null) when empty.
func median(xs []float64) interface{} {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return nil
	}
	if len(s)%2 == 1 {
		return round3(s[len(s)/2])
	}
	return round3((s[len(s)/2-1] + s[len(s)/2]) / 2)
}

// waitUntil polls cond (under the tracker lock) every 5 ms until it holds or the deadline.
func waitUntil(tr *tracker, timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		tr.mu.Lock()
		ok := cond()
		tr.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func main() {
	started := time.Now() // the nodes are created right after
	n := flag.Int("n", 8, "number of nodes")
	preset := flag.String("preset", "local", "local or lan")
	scenarios := flag.String("scenarios", "converge,broadcast,steady,detect,leave", "comma-separated, run in this order on one cluster")
	timeout := flag.Float64("timeout", 120, "time box of each scenario, seconds")
	steadyS := flag.Float64("steady", 10, "idle seconds measured by the steady scenario")
	settleS := flag.Float64("settle", 5, "idle seconds before steady measures (join transients)")
	retransmitMult := flag.Int("retransmit-mult", 0, "override RetransmitMult (experiment; 0 = preset)")
	flag.BoolVar(&logToStderr, "log", false, "also print every log line to stderr, with node and time")
	soakS := flag.Float64("soak", 300, "seconds the soak scenario holds the converged cluster")
	soakJoiners := flag.Int("soak-joiners", 16, "concurrent joins while the soak scenario starts the cluster")
	soakJoinRate := flag.Float64("soak-join-rate", 10, "joins started per second by the soak scenario (a rollout); 0: as fast as the joiners go")
	broadcasts := flag.Int("broadcasts", 1, "messages the broadcast scenario queues; > 1: counts the misses after one push/pull interval")
	extraPushPulls := flag.Int("extra-pushpulls", 0, "experiment: after its join, each node push/pulls K more times with a random member, 2, 4, 8, ... gossip intervals later (emulated by Join)")
	flag.Parse()

	out := &output{impl: "go", preset: *preset, n: *n}
	nofile := raiseNofile()
	if strings.Contains(*scenarios, "soak") {
		mc := metrics.DefaultConfig("")
		mc.EnableHostname = false
		mc.EnableRuntimeMetrics = false
		metrics.NewGlobal(mc, &suspectSink{})
		warns = &warnCounter{m: map[string]int64{}}
	}
	box := time.Duration(*timeout * float64(time.Second))
	N := *n
	gossipInterval := newConfig(*preset, "x", nil, -1).GossipInterval
	tr := newTracker(N)
	tr.bcastAt = nil
	rssBase, anonBase := rssKiB(), anonKiB()

	nodes := make([]*memberlist.Memberlist, N)
	dels := make([]*delegate, N)
	for i := 0; i < N; i++ {
		m, d, err := create(*preset, i, tr, *retransmitMult)
		if err != nil {
			out.result("setup", "error", map[string]interface{}{"error": err.Error(), "node": i})
			os.Exit(1)
		}
		nodes[i], dels[i] = m, d
	}
	seed := nodes[0].LocalNode().Address()
	out.emit("info", map[string]interface{}{"version": "hashicorp/memberlist 0.2.2 (Debian)", "bytes_source": "transport wrapper (UDP payload + TCP stream bytes sent)", "gomaxprocs": os.Getenv("GOMAXPROCS"), "nofile": nofile})

	alive := make([]bool, N) // nodes still running (not stopped, not left)
	for i := range alive {
		alive[i] = true
	}
	converged := false
	for _, sc := range strings.Split(*scenarios, ",") {
		switch sc {
		case "converge":
			tr.mu.Lock()
			tr.t0 = time.Now()
			tr.record = true
			tr.curve = append(tr.curve, point{0, tr.total})
			tr.mu.Unlock()
			var failed int64
			var wg sync.WaitGroup
			for i := 1; i < N; i++ {
				wg.Add(1)
				go func(i int) {
					defer wg.Done()
					// Retry refused joins (the seed serves at most 128 push/pulls at once).
					for try := 0; try < 50; try++ {
						if _, err := nodes[i].Join([]string{seed}); err == nil {
							delay := 2 * gossipInterval
							for k := 0; k < *extraPushPulls; k++ {
								time.Sleep(delay)
								delay *= 2
								pushPullRandom(nodes[i])
							}
							return
						}
						atomic.AddInt64(&failed, 1)
						time.Sleep(100 * time.Millisecond)
					}
				}(i)
			}
			ok := waitUntil(tr, box, func() bool { return tr.fullAt >= 0 })
			wg.Wait()
			tr.mu.Lock()
			tr.record = false
			fields := map[string]interface{}{"join_retries": failed, "pushpull_calls": tr.pushPulls,
				"curve": curvePoints(tr.curve, N, 300)}
			status := "timeout"
			if ok {
				status = "ok"
				fields["seconds"] = round3(tr.fullAt)
			} else {
				fields["known_fraction"] = float64(tr.total) / float64(N*N)
			}
			tr.curve = nil // the bench's own log must not count in the steady RSS
			tr.mu.Unlock()
			converged = ok
			out.result("converge", status, fields)
			debug.FreeOSMemory()

		case "broadcast":
			if !converged {
				out.result(sc, "skipped", map[string]interface{}{"reason": "not converged"})
				continue
			}
			origin := 1 % N
			if *broadcasts > 1 {
				// K messages queued at once on the origin; a miss is a (node, message) pair
				// not delivered one push/pull interval later. Queued once the cluster is two
				// intervals old (periodic push/pulls under way), as in ours.
				K := *broadcasts
				window := newConfig(*preset, "x", nil, -1).PushPullInterval
				time.Sleep(time.Until(started.Add(2 * window)))
				tr.mu.Lock()
				tr.bcastAt = make([]float64, N)
				tr.bcastGot = make([][]bool, N)
				for i := range tr.bcastGot {
					tr.bcastAt[i] = -1
					tr.bcastGot[i] = make([]bool, K)
				}
				tr.t0 = time.Now()
				tr.mu.Unlock()
				for k := 1; k <= K; k++ {
					dels[origin].queue.QueueBroadcast(&userBcast{[]byte("bench-broadcast-" + strconv.Itoa(k))})
				}
				want, got, last := (N-1)*K, 0, 0.0
				deadline := tr.t0.Add(window)
				for {
					tr.mu.Lock()
					got = 0
					for i, g := range tr.bcastGot {
						for _, ok := range g {
							if ok && i != origin {
								got++
							}
						}
					}
					last = tr.bcastLast
					tr.mu.Unlock()
					if got == want || !time.Now().Before(deadline) {
						break
					}
					time.Sleep(5 * time.Millisecond)
				}
				tr.mu.Lock()
				tr.bcastGot, tr.bcastAt = nil, nil
				tr.mu.Unlock()
				fields := map[string]interface{}{"messages": K, "misses": want - got, "window": window.Seconds()}
				status := "incomplete"
				if got == want {
					status = "ok"
					fields["max"], fields["seconds"] = round3(last), round3(last)
				}
				out.result(sc, status, fields)
				continue
			}
			tr.mu.Lock()
			tr.bcastAt = make([]float64, N)
			for i := range tr.bcastAt {
				tr.bcastAt[i] = -1
			}
			tr.t0 = time.Now()
			tr.bcastAt[origin] = 0
			tr.mu.Unlock()
			dels[origin].queue.QueueBroadcast(&userBcast{[]byte("bench-broadcast-1")})
			// Done when every node has it, or when no queue holds it any more (it will not
			// arrive anywhere else then).
			var idleSince time.Time
			deadline := time.Now().Add(box)
			status := "timeout"
			for time.Now().Before(deadline) {
				tr.mu.Lock()
				have := 0
				for _, t := range tr.bcastAt {
					if t >= 0 {
						have++
					}
				}
				tr.mu.Unlock()
				if have == N {
					status = "ok"
					break
				}
				queued := 0
				for _, d := range dels {
					queued += d.queue.NumQueued()
				}
				if queued == 0 {
					if idleSince.IsZero() {
						idleSince = time.Now()
					} else if time.Since(idleSince) > time.Second {
						status = "incomplete"
						break
					}
				} else {
					idleSince = time.Time{}
				}
				time.Sleep(5 * time.Millisecond)
			}
			tr.mu.Lock()
			var times []float64
			for i, t := range tr.bcastAt {
				if t >= 0 && i != origin {
					times = append(times, t)
				}
			}
			tr.mu.Unlock()
			fields := map[string]interface{}{"reached": len(times) + 1, "median": median(times)}
			if len(times) > 0 {
				sort.Float64s(times)
				fields["max"] = round3(times[len(times)-1])
			}
			if status == "ok" {
				fields["seconds"] = fields["max"]
			}
			out.result(sc, status, fields)

		case "steady":
			if !converged {
				out.result(sc, "skipped", map[string]interface{}{"reason": "not converged"})
				continue
			}
			time.Sleep(time.Duration(*settleS * float64(time.Second)))
			cpu0, b0, t0 := cpuSeconds(), atomic.LoadInt64(&wireBytes), time.Now()
			time.Sleep(time.Duration(*steadyS * float64(time.Second)))
			cpu1, b1, el := cpuSeconds(), atomic.LoadInt64(&wireBytes), time.Since(t0).Seconds()
			rss, anon := rssKiB(), anonKiB()
			out.result(sc, "ok", map[string]interface{}{
				"duration_s":        round3(el),
				"cpu_s":             round3(cpu1 - cpu0),
				"cpu_ms_per_node_s": round3((cpu1 - cpu0) * 1000 / el / float64(N)),
				"rss_kib_per_node":  round3(float64(rss-rssBase) / float64(N)),
				"rss_kib":           rss,
				"anon_kib_per_node": round3(float64(anon-anonBase) / float64(N)),
				"bytes_per_node_s":  round3(float64(b1-b0) / el / float64(N)),
				"bytes_source":      "transport",
			})

		case "detect", "leave":
			if !converged {
				out.result(sc, "skipped", map[string]interface{}{"reason": "not converged"})
				continue
			}
			// detect stops the last running node; leave makes the one before it leave.
			target := -1
			skip := 0
			if sc == "leave" {
				skip = 1
			}
			for i := N - 1; i >= 1; i-- {
				if alive[i] {
					if skip == 0 {
						target = i
						break
					}
					skip--
				}
			}
			if target < 0 {
				out.result(sc, "skipped", map[string]interface{}{"reason": "too few nodes"})
				continue
			}
			tr.mu.Lock()
			tr.watch = target
			tr.goneAt = make([]float64, N)
			for i := range tr.goneAt {
				tr.goneAt[i] = -1
			}
			tr.t0 = time.Now()
			tr.mu.Unlock()
			alive[target] = false
			if sc == "detect" {
				nodes[target].Shutdown()
			} else {
				go func() {
					nodes[target].Leave(box)
					nodes[target].Shutdown()
				}()
			}
			ok := waitUntil(tr, box, func() bool {
				for i, t := range tr.goneAt {
					if alive[i] && t < 0 {
						return false
					}
				}
				return true
			})
			tr.mu.Lock()
			var times []float64
			observers := 0
			for i, t := range tr.goneAt {
				if alive[i] {
					observers++
					if t >= 0 {
						times = append(times, t)
					}
				}
			}
			tr.watch = -1
			tr.mu.Unlock()
			fields := map[string]interface{}{"observers": observers, "seen": len(times), "median": median(times)}
			if len(times) > 0 {
				sort.Float64s(times)
				fields["max"] = round3(times[len(times)-1])
			}
			status := "timeout"
			if ok {
				status = "ok"
				fields["seconds"] = fields["max"]
			}
			out.result(sc, status, fields)

		case "soak":
			// Join (unless an earlier scenario did), wait until every node sees N alive members,
			// then hold --soak seconds: any leave event meanwhile is a false failure.
			cpuStart := cpuSeconds()
			var refused int64
			var joinsDoneS float64 // when the last join returned
			tr.mu.Lock()
			tr.countGone = true
			if !converged {
				tr.t0 = time.Now()
			}
			tr.mu.Unlock()
			if !converged {
				// A pool of joiners (each join is a push/pull of the whole state with n0),
				// retrying refused joins until the time box ends. Paced like a rollout: join i
				// starts no earlier than (i-1)/rate seconds in (--soak-join-rate; 0: unpaced).
				var next int64 = 0
				var joinsDone int64 // ns after start when the last join returned
				start := time.Now()
				deadline := start.Add(box)
				var wg sync.WaitGroup
				workers := *soakJoiners
				if workers > N-1 {
					workers = N - 1
				}
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := int(atomic.AddInt64(&next, 1)); i < N; i = int(atomic.AddInt64(&next, 1)) {
							if *soakJoinRate > 0 {
								time.Sleep(time.Until(start.Add(time.Duration(float64(i-1) / *soakJoinRate * float64(time.Second)))))
							}
							for {
								if _, err := nodes[i].Join([]string{seed}); err == nil || time.Now().After(deadline) {
									break
								}
								atomic.AddInt64(&refused, 1)
								time.Sleep(100 * time.Millisecond)
							}
							at := int64(time.Since(start))
							for cur := atomic.LoadInt64(&joinsDone); cur < at && !atomic.CompareAndSwapInt64(&joinsDone, cur, at); cur = atomic.LoadInt64(&joinsDone) {
							}
						}
					}()
				}
				converged = waitUntil(tr, box, func() bool { return tr.fullAt >= 0 })
				wg.Wait()
				joinsDoneS = float64(atomic.LoadInt64(&joinsDone)) / 1e9
			}
			tr.mu.Lock()
			goneConverge := tr.goneEvents
			fields := map[string]interface{}{"join_retries": refused, "join_rate": *soakJoinRate, "joins_done_s": round3(joinsDoneS),
				"converge_cpu_s":          round3(cpuSeconds() - cpuStart),
				"false_failures_converge": goneConverge, "known_fraction_converged": float64(tr.total) / float64(N*N)}
			if converged {
				fields["converge_s"] = round3(tr.fullAt)
			}
			tr.mu.Unlock()
			if !converged {
				tr.mu.Lock()
				tr.countGone = false
				fields["gone_log"] = append([]string{}, tr.goneLog...)
				tr.mu.Unlock()
				fields["suspicions_converge"] = atomic.LoadInt64(&suspicions)
				fields["warnings"] = warns.snapshot()
				out.result(sc, "timeout", fields)
				os.Exit(0) // shutting down hundreds of overloaded nodes takes long: leave it to the OS
			}
			susp0, cpu0, b0 := atomic.LoadInt64(&suspicions), cpuSeconds(), atomic.LoadInt64(&wireBytes)
			tr.mu.Lock()
			tr.holding = true
			tr.minTotalHolding = tr.total
			tr.mu.Unlock()
			t0 := time.Now()
			end := t0.Add(time.Duration(*soakS * float64(time.Second)))
			nextNote := t0.Add(30 * time.Second)
			for time.Now().Before(end) {
				d := time.Until(end)
				if d > 200*time.Millisecond {
					d = 200 * time.Millisecond
				}
				time.Sleep(d)
				if time.Now().After(nextNote) { // progress on stderr, for long runs
					nextNote = nextNote.Add(30 * time.Second)
					tr.mu.Lock()
					fmt.Fprintf(os.Stderr, "soak n=%d t=%.0fs known=%.6f false_failures=%d\n", N, time.Since(t0).Seconds(),
						float64(tr.total)/float64(N*N), tr.goneEvents-goneConverge)
					tr.mu.Unlock()
				}
			}
			cpu1, b1, susp1, el := cpuSeconds(), atomic.LoadInt64(&wireBytes), atomic.LoadInt64(&suspicions), time.Since(t0).Seconds()
			rss := rssKiB()
			tr.mu.Lock()
			tr.holding = false
			tr.countGone = false
			falseFailures := tr.goneEvents - goneConverge
			still := tr.total == N*N
			fields["false_failures"] = falseFailures
			fields["gone_log"] = append([]string{}, tr.goneLog...)
			fields["min_known_fraction"] = float64(tr.minTotalHolding) / float64(N*N)
			fields["still_converged"] = still
			tr.mu.Unlock()
			fields["hold_s"] = round3(el)
			fields["suspicions"] = susp1 - susp0
			fields["cpu_s"] = round3(cpu1 - cpu0)
			fields["cpu_cores"] = round3((cpu1 - cpu0) / el)
			fields["cpu_ms_per_node_s"] = round3((cpu1 - cpu0) * 1000 / el / float64(N))
			fields["rss_kib"] = rss
			fields["rss_kib_per_node"] = round3(float64(rss-rssBase) / float64(N))
			fields["bytes_per_node_s"] = round3(float64(b1-b0) / el / float64(N))
			fields["warnings"] = warns.snapshot()
			status := "failed"
			if falseFailures == 0 && goneConverge == 0 && still {
				status = "ok"
			}
			out.result(sc, status, fields)

		default:
			out.result(sc, "error", map[string]interface{}{"error": "unknown scenario"})
		}
	}
	for i, m := range nodes {
		if alive[i] {
			m.Shutdown()
		}
	}
	out.emit("done", map[string]interface{}{})
}
