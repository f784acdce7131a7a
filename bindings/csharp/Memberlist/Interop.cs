using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace LibMemberlist.Interop;

/// <summary>Finds libmemberlist: MEMBERLIST_LIB_DIR first (tests, build prefixes), then the
/// runtime's own probing (runtimes/linux-x64/native from the NuGet package, LD_LIBRARY_PATH,
/// system directories), then the SONAME for installs without the dev symlink.</summary>
internal static class LibraryLoader
{
    // A library registering its own resolver is the intended use here: it must run before the
    // first P/Invoke, whichever public type the host touches first.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Register() =>
        NativeLibrary.SetDllImportResolver(typeof(LibraryLoader).Assembly, Resolve);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Native.Library)
            return IntPtr.Zero;
        var dir = Environment.GetEnvironmentVariable("MEMBERLIST_LIB_DIR");
        if (!string.IsNullOrEmpty(dir) &&
            NativeLibrary.TryLoad(Path.Combine(dir, "libmemberlist.so"), out var fromDir))
            return fromDir;
        if (NativeLibrary.TryLoad(name, assembly, path, out var probed))
            return probed;
        return NativeLibrary.TryLoad($"libmemberlist.so.{Native.ML_ABI_VERSION}", out var soname)
            ? soname : IntPtr.Zero;
    }
}

/// <summary>Base of every native handle: freed exactly once, by Dispose or the finalizer, and
/// never while a call that took a reference (<see cref="Lease"/>) is running.</summary>
internal abstract unsafe class NativeHandle<T> : SafeHandle where T : unmanaged
{
    protected NativeHandle() : base(IntPtr.Zero, ownsHandle: true) { }
    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>True while the finalizer (not Dispose) releases the handle.</summary>
    protected bool Finalizing { get; private set; }

    protected override void Dispose(bool disposing)
    {
        if (!disposing)
            Finalizing = true;
        base.Dispose(disposing);
    }

    /// <summary>Runs a free that may wait for host callbacks or run host code; when finalizing,
    /// on a pool thread: the process has one finalizer thread, and a callback being waited for
    /// might itself wait for finalizers (GC.WaitForPendingFinalizers, a lock a finalizer needs).</summary>
    protected void FreeOffFinalizer(Action<IntPtr> free)
    {
        if (Finalizing)
            ThreadPool.UnsafeQueueUserWorkItem(free, handle, preferLocal: false);
        else
            free(handle);
    }

    /// <summary>The pointer, kept valid until the lease is disposed (ObjectDisposedException
    /// once the handle is closed).</summary>
    public Lease Use() => new(this);

    /// <summary>A lease on <paramref name="h"/>, or an empty one (null pointer) for null.</summary>
    public static Lease UseOrNull(NativeHandle<T>? h) => h is null ? default : new(h);

    public readonly ref struct Lease
    {
        private readonly NativeHandle<T> _owner;
        public readonly T* Ptr;
        public Lease(NativeHandle<T> owner)
        {
            bool added = false;
            owner.DangerousAddRef(ref added);
            _owner = owner;
            Ptr = (T*)owner.DangerousGetHandle();
        }
        public void Dispose() => _owner?.DangerousRelease();
    }
}

internal sealed unsafe class ConfigHandle : NativeHandle<ml_config>
{
    protected override bool ReleaseHandle() { Native.ml_config_free((ml_config*)handle); return true; }
}

internal sealed unsafe class RuntimeHandle : NativeHandle<ml_runtime>
{
    protected override bool ReleaseHandle() { Native.ml_runtime_free((ml_runtime*)handle); return true; }
}

internal sealed unsafe class MemberlistHandle : NativeHandle<ml_memberlist>
{
    // Waits for running callbacks, then calls user_data_free (deferred by the library when
    // this runs inside one of the memberlist's own callbacks).
    protected override bool ReleaseHandle()
    {
        FreeOffFinalizer(static p => Native.ml_memberlist_destroy((ml_memberlist*)p));
        return true;
    }
}

internal sealed unsafe class NodeHandle : NativeHandle<ml_node>
{
    protected override bool ReleaseHandle() { Native.ml_node_free((ml_node*)handle); return true; }
}

internal sealed unsafe class NodeListHandle : NativeHandle<ml_node_list>
{
    protected override bool ReleaseHandle() { Native.ml_node_list_free((ml_node_list*)handle); return true; }
}

internal sealed unsafe class BytesListHandle : NativeHandle<ml_bytes_list>
{
    protected override bool ReleaseHandle() { Native.ml_bytes_list_free((ml_bytes_list*)handle); return true; }
}

internal sealed unsafe class MetricsHandle : NativeHandle<ml_metrics>
{
    protected override bool ReleaseHandle() { Native.ml_metrics_free((ml_metrics*)handle); return true; }
}

internal sealed unsafe class BroadcastQueueHandle : NativeHandle<ml_broadcast_queue>
{
    // Runs the done callbacks of the messages still queued (host code).
    protected override bool ReleaseHandle()
    {
        FreeOffFinalizer(static p => Native.ml_broadcast_queue_free((ml_broadcast_queue*)p));
        return true;
    }
}

/// <summary>A string array as NUL-terminated UTF-8 strings for one native call (the library
/// copies them before it returns): null entries and NULs inside are refused; Dispose frees
/// them, also when a later one fails to marshal.</summary>
internal sealed class NativeStrings : IDisposable
{
    public readonly IntPtr[] Pointers;

    public NativeStrings(string[] values, string paramName, string what)
    {
        ArgumentNullException.ThrowIfNull(values, paramName);
        if (Array.IndexOf(values, null) >= 0)
            throw new ArgumentException($"an {what} is null", paramName);
        Pointers = new IntPtr[values.Length];
        try
        {
            for (int i = 0; i < values.Length; i++)
                Pointers[i] = Marshal.StringToCoTaskMemUTF8(Util.NoNul(values[i], what));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var p in Pointers)
            Marshal.FreeCoTaskMem(p); // IntPtr.Zero (not yet marshalled) is a no-op
    }
}

internal static unsafe class Util
{
    /// <summary>Copies a byte-string list.</summary>
    public static List<byte[]> BytesList(ml_bytes_list* list)
    {
        var result = new List<byte[]>();
        nuint n = Native.ml_bytes_list_len(list);
        for (nuint i = 0; i < n; i++)
        {
            nuint len;
            byte* p = Native.ml_bytes_list_get(list, i, &len);
            result.Add(Bytes(p, len));
        }
        return result;
    }

    /// <summary>A name, address or label for the library, which reads it up to its first NUL:
    /// one inside is refused rather than cut short (docs/abi.md, "Strings").</summary>
    public static string? NoNul(string? s, string what) =>
        s is not null && s.Contains('\0')
            ? throw new MemberlistException(Native.ML_E_INVALID, $"{what} contains a NUL byte")
            : s;

    public static string Utf8(byte* s) => s == null ? "" : Marshal.PtrToStringUTF8((IntPtr)s) ?? "";

    /// <summary>Throws for a failed handle-less call; ml_last_error is thread-local and read on
    /// the calling thread right after the call.</summary>
    public static void Check(int status)
    {
        if (status != Native.ML_OK)
            throw new MemberlistException(status, Utf8(Native.ml_last_error()));
    }

    public static uint Millis(TimeSpan t, string what)
    {
        var ms = t.TotalMilliseconds;
        if (ms < 0 || ms > uint.MaxValue)
            throw new MemberlistException(Native.ML_E_INVALID, $"{what} {t} out of range");
        return (uint)ms;
    }

    /// <summary>Wraps an out-pointer result in its SafeHandle right away.</summary>
    public static TH Wrap<TH, T>(T* ptr) where TH : NativeHandle<T>, new() where T : unmanaged
    {
        var h = new TH();
        Marshal.InitHandle(h, (IntPtr)ptr);
        return h;
    }

    private static int _versionChecked;

    /// <summary>Refuses a library older than the header Native.g.cs was generated from.</summary>
    public static void CheckVersion()
    {
        if (Volatile.Read(ref _versionChecked) == 1)
            return;
        uint major, minor, patch;
        Native.ml_version(&major, &minor, &patch);
        uint abi = Native.ml_abi_version();
        if (abi != Native.ML_ABI_VERSION || major < Native.ML_VERSION_MAJOR ||
            (major == Native.ML_VERSION_MAJOR && minor < Native.ML_VERSION_MINOR))
            throw new MemberlistException(Native.ML_E_VERSION,
                $"libmemberlist {major}.{minor}.{patch} (ABI {abi}) is older than or incompatible with " +
                $"the bindings ({Native.ML_VERSION_MAJOR}.{Native.ML_VERSION_MINOR}, ABI {Native.ML_ABI_VERSION})");
        Volatile.Write(ref _versionChecked, 1);
    }

    public static byte[] Bytes(byte* p, nuint len) =>
        p == null || len == 0 ? [] : new ReadOnlySpan<byte>(p, checked((int)len)).ToArray();

    public static readonly Encoding Utf8Strict = new UTF8Encoding(false, true);
}
