// Three nodes on loopback over TlsTransport: every datagram and stream message rides a TLS
// connection (SslStream, mutual authentication), with no UDP at all. The certificate is a
// self-signed one made here; each node trusts exactly it (its SHA-256 thumbprint is pinned).
//     MEMBERLIST_LIB_DIR=<prefix>/lib dotnet run --project examples/TlsTransport
// Prints each node's view once the three see each other, then leaves; exits 0, or 1 if the
// cluster did not form within 30 seconds.
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using LibMemberlist;

using var cert = SelfSigned("memberlist-example");
var pin = cert.GetCertHashString(HashAlgorithmName.SHA256);

var nodes = new List<Memberlist>();
try
{
    foreach (var name in new[] { "tls-1", "tls-2", "tls-3" })
    {
        var transport = new TlsTransport(new TlsTransportOptions
        {
            Certificate = cert,
            ValidateRemoteCertificate = TlsTransport.PinThumbprint(pin),
        });
        using var config = MemberlistConfig.Local();
        config.Name = name;
        nodes.Add(Memberlist.Create(config, new MemberlistDelegates { Transport = transport }));
        Console.WriteLine($"{name} on {transport.LocalEndPoint} (TLS)");
    }
    var seed = nodes[0].LocalNode.Address;
    foreach (var node in nodes.Skip(1))
        node.Join(seed);

    // Wait for the event itself: every node sees all three.
    var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
    while (!nodes.All(n => n.NumMembers == nodes.Count))
    {
        if (DateTime.UtcNow > deadline)
        {
            Console.Error.WriteLine("the cluster did not form within 30 s");
            return 1;
        }
        Thread.Sleep(50);
    }
    foreach (var node in nodes)
    {
        Console.WriteLine($"{node.LocalNode.Name} sees:");
        foreach (var m in node.Members().OrderBy(m => m.Name, StringComparer.Ordinal))
            Console.WriteLine($"  {m.Name} {m.Address} {m.State}");
    }
    foreach (var node in nodes)
        node.Leave(TimeSpan.FromSeconds(2));
    return 0;
}
finally
{
    foreach (var node in nodes)
        node.Dispose(); // also shuts its transport down
}

// A self-signed ECDSA certificate, re-imported from PFX so that SslStream gets a persisted key.
static X509Certificate2 SelfSigned(string cn)
{
    using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
    var req = new CertificateRequest($"CN={cn}", key, HashAlgorithmName.SHA256);
    using var ephemeral = req.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    return X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pfx), null);
}
