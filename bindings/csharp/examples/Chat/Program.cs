// Starts a node on loopback, joins the given seeds, broadcasts a greeting, sends every other
// member a reliable message and prints what it receives.
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run --project examples/Chat -- NAME [SEED_ADDR...]
using System.Text;
using LibMemberlist;

var name = args.Length > 0 ? args[0] : "cs-chat";
using var config = MemberlistConfig.Local();
config.Name = name;
config.BindAddress = "127.0.0.1";
config.BindPort = 0;
var hooks = new ChatHooks(name);
using var list = Memberlist.Create(config, new MemberlistDelegates { Delegate = hooks, Broadcasts = hooks });
Console.WriteLine($"{name} listening on {list.LocalNode.Address}");
if (args.Length > 1)
    list.Join(args[1..]);
list.QueueBroadcast(null, Encoding.UTF8.GetBytes($"hello from {name}"));
for (int i = 0; i < 5; i++)
{
    Thread.Sleep(1000); // a demo: talk to everyone once a second
    foreach (var m in list.Members().Where(m => m.Name != name))
    {
        try { list.SendReliable(m.Name, Encoding.UTF8.GetBytes($"{name} says hi ({i})")); }
        catch (MemberlistException e) { Console.Error.WriteLine($"send: {e.Message}"); }
    }
}
list.Leave(TimeSpan.FromSeconds(2));

sealed class ChatHooks(string name) : IDelegate, IBroadcastDelegate
{
    public byte[] NodeMeta(int limit) => Encoding.UTF8.GetBytes($"chat-node {name}");
    public void NotifyMsg(byte[] message) => Console.WriteLine($"message: {Encoding.UTF8.GetString(message)}");
    public IEnumerable<byte[]> GetBroadcasts(int overhead, int limit) => [];
    public byte[] LocalState(bool join) => [];
    public void MergeRemoteState(byte[] state, bool join) { }
    public void NotifyBroadcast(string origin, string n, byte[] message) =>
        Console.WriteLine($"broadcast from {origin}: {Encoding.UTF8.GetString(message)}");
    public void NotifyBroadcastDone(ulong id, BroadcastOutcome outcome) => Console.WriteLine($"our broadcast {id}: {outcome}");
}
