// Callback round-trip cost: a thread calls the event trampoline the library would call
// (unmanaged function pointer -> UnmanagedCallersOnly method, GCHandle lookup, Node copy,
// IEventDelegate call) N times; prints ns per callback.
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run -c Release --project examples/Bench -- [N]
using LibMemberlist;

int n = args.Length > 0 ? int.Parse(args[0]) : 200_000;
using var config = MemberlistConfig.Local();
config.Name = "cs-bench";
config.BindAddress = "127.0.0.1";
config.BindPort = 0;
using var list = Memberlist.Create(config);
var counter = new Counter();
list.BenchEventRoundTrip(counter, Math.Min(n, 10_000)); // warm up the JIT
counter.Count = 0;
var per = list.BenchEventRoundTrip(counter, n);
if (counter.Count != n)
    throw new InvalidOperationException($"{counter.Count} callbacks, want {n}");
Console.WriteLine($"csharp: {per.TotalNanoseconds:F0} ns per event callback ({n} callbacks)");

sealed class Counter : IEventDelegate
{
    public int Count;
    public void NotifyJoin(Node node) => Count++;
    public void NotifyLeave(Node node) => Count++;
    public void NotifyUpdate(Node node) => Count++;
}
