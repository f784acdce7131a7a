// Tests count live GCHandles and use real sockets on a small machine: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
