"""Three members whose bytes go over TcpTransport (TCP only, no UDP; pass ssl contexts to
TcpTransport for TLS) instead of the library's sockets, with the library's encryption on top.
b and c join a; prints the members each sees; exits 0 once all three see all three."""
import sys
import threading

import libmemberlist as ml

NAMES = ("tcp-a", "tcp-b", "tcp-c")


def main():
    print("libmemberlist", ml.version(), "from", ml.library_path)
    everyone = threading.Condition()
    joined = {name: set() for name in NAMES}

    def on_event(name):
        def seen(type_, node):
            with everyone:
                if type_ == ml.EventType.JOIN:
                    joined[name].add(node.name)
                    everyone.notify_all()
        return seen

    nodes = []
    try:
        for name in NAMES:
            transport = ml.TcpTransport("127.0.0.1", 0)  # server_ssl=..., client_ssl=... for TLS
            with ml.Config("local", name=name, log_level=ml.LogLevel.WARN) as cfg:
                cfg.add_key(b"an example key!!")  # 16 bytes: AES-128
                nodes.append(ml.Memberlist(cfg, transport=transport, on_event=on_event(name)))
            print(name, "listens on", transport.address)
        seed = nodes[0].local_node().address
        for m in nodes[1:]:
            m.join(seed)
        with everyone:
            ok = everyone.wait_for(lambda: all(len(s) == 3 for s in joined.values()), 30)
        for name, m in zip(NAMES, nodes):
            print(name, "sees", ", ".join("%s at %s" % (n.name, n.address)
                                          for n in sorted(m.members(), key=lambda n: n.name)))
        return 0 if ok else 1
    finally:
        for m in nodes:
            m.close()  # shuts its transport down too


if __name__ == "__main__":
    sys.exit(main())
