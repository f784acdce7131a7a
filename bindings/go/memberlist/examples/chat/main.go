// Command chat starts a node on loopback, joins the given seeds, broadcasts a greeting,
// sends every other member a reliable message and prints what it receives.
//
//	go run ./examples/chat NAME [SEED_ADDR...]
package main

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/libmemberlist/libmemberlist/bindings/go/memberlist"
)

// hooks prints user messages and broadcasts; metadata comes from NodeMeta.
type hooks struct{ name string }

func (h hooks) NodeMeta(limit int) []byte                { return []byte("chat-node " + h.name) }
func (hooks) NotifyMsg(b []byte)                         { fmt.Printf("message: %q\n", b) }
func (hooks) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (hooks) LocalState(join bool) []byte                { return nil }
func (hooks) MergeRemoteState(buf []byte, join bool)     {}
func (hooks) NotifyBroadcast(origin, name string, b []byte) {
	fmt.Printf("broadcast from %s: %q\n", origin, b)
}
func (hooks) NotifyBroadcastDone(id uint64, o memberlist.BroadcastOutcome) {
	fmt.Printf("our broadcast %d: %s\n", id, o)
}

func main() {
	conf := memberlist.DefaultLocalConfig()
	conf.Name = "go-chat"
	if len(os.Args) > 1 {
		conf.Name = os.Args[1]
	}
	conf.BindAddr, conf.BindPort = "127.0.0.1", 0
	h := hooks{conf.Name}
	conf.Delegate, conf.Broadcasts = h, h
	list, err := memberlist.Create(conf)
	if err != nil {
		log.Fatal(err)
	}
	defer list.Close()
	fmt.Println(conf.Name, "listening on", list.LocalNode().Address())
	if len(os.Args) > 2 {
		if _, err := list.Join(os.Args[2:]); err != nil {
			log.Fatal(err)
		}
	}
	if _, err := list.QueueBroadcast("", []byte("hello from "+conf.Name)); err != nil {
		log.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		time.Sleep(time.Second) // a demo: talk to everyone once a second
		for _, m := range list.Members() {
			if m.Name != conf.Name {
				if err := list.SendReliable(m, []byte(fmt.Sprintf("%s says hi (%d)", conf.Name, i))); err != nil {
					log.Println("send:", err)
				}
			}
		}
	}
	if err := list.Leave(2 * time.Second); err != nil {
		log.Println("leave:", err)
	}
}
