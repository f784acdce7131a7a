// Command join starts a node on loopback and joins the given seeds.
//
//	go run ./examples/join NAME [SEED_ADDR...]
package main

import (
	"fmt"
	"log"
	"os"
	"time"

	"github.com/libmemberlist/libmemberlist/bindings/go/memberlist"
)

type printer struct{}

func (printer) NotifyJoin(n *memberlist.Node)   { fmt.Println("join:", n.Name, n.Address()) }
func (printer) NotifyLeave(n *memberlist.Node)  { fmt.Println("leave:", n.Name, n.State) }
func (printer) NotifyUpdate(n *memberlist.Node) { fmt.Println("update:", n.Name) }

func main() {
	conf := memberlist.DefaultLocalConfig()
	conf.Name = "go-example"
	if len(os.Args) > 1 {
		conf.Name = os.Args[1]
	}
	conf.BindAddr, conf.BindPort = "127.0.0.1", 0
	conf.Events = printer{}
	list, err := memberlist.Create(conf)
	if err != nil {
		log.Fatal(err)
	}
	defer list.Close()
	fmt.Println(conf.Name, "listening on", list.LocalNode().Address())
	if len(os.Args) > 2 {
		n, err := list.Join(os.Args[2:])
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("joined", n, "seed(s)")
	}
	for i := 0; i < 5; i++ {
		time.Sleep(time.Second) // a demo: print the view once a second
		for _, m := range list.Members() {
			fmt.Printf("  %s %s %s\n", m.Name, m.Address(), m.State)
		}
	}
	if err := list.Leave(2 * time.Second); err != nil {
		log.Println("leave:", err)
	}
}
