// Starts a node on loopback and joins the given seeds.
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run --project examples/Join -- NAME [SEED_ADDR...]
using LibMemberlist;

var name = args.Length > 0 ? args[0] : "cs-example";
using var config = MemberlistConfig.Local();
config.Name = name;
config.BindAddress = "127.0.0.1";
config.BindPort = 0;
using var list = Memberlist.Create(config, new Printer(),
    (level, msg) => { if (level >= LogLevel.Warn) Console.Error.WriteLine($"[{level}] {msg}"); });
Console.WriteLine($"{name} listening on {list.LocalNode.Address}");
if (args.Length > 1)
    Console.WriteLine($"joined {list.Join(args[1..])} seed(s)");
for (int i = 0; i < 5; i++)
{
    Thread.Sleep(1000); // a demo: print the view once a second
    foreach (var n in list.Members())
        Console.WriteLine($"  {n.Name} {n.Address} {n.State}");
}
list.Leave(TimeSpan.FromSeconds(2));

sealed class Printer : IEventDelegate
{
    public void NotifyJoin(Node node) => Console.WriteLine($"join: {node.Name} {node.Address}");
    public void NotifyLeave(Node node) => Console.WriteLine($"leave: {node.Name} {node.State}");
    public void NotifyUpdate(Node node) => Console.WriteLine($"update: {node.Name}");
}
