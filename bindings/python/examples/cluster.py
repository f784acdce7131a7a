"""Two members on loopback: b joins a and sends it a message; a takes the events from its
queue (no callback, no thread of ours). Prints what a saw; exits 0 once it saw both."""
import sys

import libmemberlist as ml


def config(name):
    return ml.Config("local", name=name, bind_addr="127.0.0.1", bind_port=0,
                     log_level=ml.LogLevel.WARN)


def main():
    print("libmemberlist", ml.version(), "from", ml.library_path)
    with config("ex-a") as ca, config("ex-b") as cb, ml.Memberlist(ca, events=True) as a, \
            ml.Memberlist(cb, events=True) as b:
        b.join(a.local_node().address)
        joined = got = False
        for ev in a.events(timeout=30):
            print(ev)
            if isinstance(ev, ml.MemberEvent) and ev.node.name == "ex-b" and not joined:
                joined = True
                b.send_reliable("ex-a", b"hello from b")
            if isinstance(ev, ml.Message) and ev.data == b"hello from b":
                got = True
                break
        print("members:", sorted(m.name for m in a.members()))
        return 0 if joined and got else 1


if __name__ == "__main__":
    sys.exit(main())
