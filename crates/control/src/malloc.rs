//! The control plane's process shares one glibc malloc arena between its threads.
//!
//! glibc gives each thread that allocates under contention its own arena (up to 8 per core), and
//! memory freed into an arena stays with it. The control plane compiles on one thread, applies on
//! the blocking pool and pushes from the async workers, so at 1,000 proxies the arenas held
//! ~130 MB more than the data: `bench-control-plane --proxies 1000` measured 327 MB RSS with the
//! default, 230 MB with two arenas and 196 MB with one, at the same apply-to-all-acked latency
//! (docs/benchmarks.md). The proxy does not call this: it runs one worker thread by default.

/// Limits malloc to one arena for the rest of the process. Call it first thing in `main`, before
/// any other thread exists (threads that already allocated keep their arenas). Returns whether
/// the C library took the setting (always `false` off glibc).
#[allow(unsafe_code)]
pub fn use_one_malloc_arena() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a tunable of glibc's allocator; it takes no pointers and is
        // documented as callable at any time (the limit applies to arenas created afterwards).
        unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

/// Returns the allocator's free memory to the operating system (glibc keeps freed pages in the
/// middle of its heap otherwise). Called after each recompilation, once the pushes are queued:
/// a compilation frees as much as the previous snapshot's indexes and pieces. Returns whether
/// any memory was released (always `false` off glibc).
#[allow(unsafe_code)]
pub fn release_free_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim takes no pointers; it only walks the allocator's own free lists
        // (under its locks) and gives whole free pages back with madvise.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}
