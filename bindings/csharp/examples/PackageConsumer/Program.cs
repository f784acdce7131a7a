// Consumer of the packed NuGet package (used by scripts/test-bindings.sh): loads the native
// library the package carries, without MEMBERLIST_LIB_DIR, and runs one node.
using LibMemberlist;

using var config = MemberlistConfig.Local();
config.Name = "cs-package-consumer";
config.BindAddress = "127.0.0.1";
config.BindPort = 0;
using var list = Memberlist.Create(config);
Console.WriteLine($"package consumer: {list.NumMembers} member at {list.LocalNode.Address}");
