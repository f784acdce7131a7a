// A module outside the binding that uses it through a replace directive (see go.mod and
// bindings/README.md, "Go: module path and vendoring"). Two members on loopback: b joins a,
// and a takes the join from its event channel. Exits 0 once a saw it.
package main

import (
	"fmt"
	"os"
	"time"

	"github.com/libmemberlist/libmemberlist/bindings/go/memberlist"
)

func config(name string, events chan<- memberlist.Event) *memberlist.Config {
	c := memberlist.DefaultLocalConfig()
	c.Name, c.BindAddr, c.BindPort = name, "127.0.0.1", 0
	c.LogLevel = memberlist.LogWarn
	c.EventCh = events
	return c
}

func main() {
	events := make(chan memberlist.Event, 16)
	a, err := memberlist.Create(config("consumer-a", events))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer a.Close()
	b, err := memberlist.Create(config("consumer-b", nil))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer b.Close()
	if _, err := b.Join([]string{a.LocalNode().Address()}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	timeout := time.After(30 * time.Second)
	for {
		select {
		case ev := <-events:
			if ev.Kind == memberlist.EventKindMember && ev.Node.Name == "consumer-b" {
				fmt.Println("consumer: a saw", ev.Node.Name, "join; libmemberlist", memberlist.LibraryVersion())
				return
			}
		case <-timeout:
			fmt.Fprintln(os.Stderr, "consumer: no join event")
			os.Exit(1)
		}
	}
}
