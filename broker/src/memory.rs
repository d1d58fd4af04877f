//! The allocator's thresholds, and memory the broker has freed given back
//! to the operating system.
//!
//! Connections that move large batches grow buffers of a megabyte or more
//! each; when they close or go quiet (`connection::idle`) the buffers are
//! freed, but glibc's allocator keeps freed blocks of that size in its
//! arenas for reuse — so without this the broker's resident memory, what
//! a container's memory limit counts, stays at the peak of the last burst
//! for good. Every [`CHECK_EVERY`], when more than [`GIVE_BACK_ABOVE`] bytes
//! lie free in the allocator, `malloc_trim` returns them. (Free memory
//! already returned still counts as free, so the trim may run again; on
//! pages already given back it costs only a walk of the free lists.)

use std::time::Duration;

/// Blocks of this size and more get mappings of their own, given back
/// when freed. Every password check (Argon2) takes a 19 MiB block; glibc
/// raises its mmap threshold past the size of a freed mapping, after which
/// such blocks came from the heap of the thread's arena and stayed there
/// when freed — as checks moved between the blocking pool's threads,
/// resident memory grew by 19 MiB steps, one per arena (found by the soak,
/// docs/soak.md).
pub const OWN_MAPPING_FROM: usize = 4 << 20;

/// Free memory an arena keeps at its top before a `free` gives it back.
/// Fixing the mmap threshold also fixes this one, at glibc's 128 KiB,
/// which made every request that freed a megabyte or two (a REST send's
/// JSON body, its decoded payloads, the binary request) hand the pages
/// back with `madvise` and the next one fault them in again, zeroed: with
/// 8 MiB kept, REST producers ran 1.7–1.9× faster on less than half of the
/// broker's CPU time, REST consumers 1.4–1.6×; 2 and 4 MiB kept a fraction
/// of that gain (docs/benchmarks.md, twelfth sitting). The price is
/// resident memory: the TCP benchmark suite peaked at 49–52 MB instead of
/// 37. Free memory past [`GIVE_BACK_ABOVE`], wherever it lies,
/// [`give_back_forever`] returns.
pub const ARENA_KEEPS: usize = 8 << 20;

/// Set the allocator's thresholds ([`OWN_MAPPING_FROM`], [`ARENA_KEEPS`]).
/// Call first thing in `main`, before any other thread exists.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator tuning; called before any
    // other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, OWN_MAPPING_FROM as libc::c_int);
        libc::mallopt(libc::M_TRIM_THRESHOLD, ARENA_KEEPS as libc::c_int);
    }
}

/// How often the allocator's free memory is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);

/// Free memory the allocator may keep for reuse without giving it back.
pub const GIVE_BACK_ABOVE: usize = 16 * 1024 * 1024;

/// Give back the allocator's free memory whenever it passes
/// [`GIVE_BACK_ABOVE`], until the task is dropped.
pub async fn give_back_forever() {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let free = free_in_allocator();
        if free > GIVE_BACK_ABOVE {
            // The trim walks every arena under its lock: not on a worker
            // that serves connections.
            let _ = tokio::task::spawn_blocking(give_back).await;
            tracing::debug!(
                "gave the allocator's free memory back ({} MiB free)",
                free >> 20
            );
        }
    }
}

/// Bytes the allocator holds free (for reuse) right now.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn free_in_allocator() -> usize {
    // SAFETY: `mallinfo2` only reads the allocator's own statistics.
    unsafe { libc::mallinfo2() }.fordblks
}

/// Return the allocator's free memory to the operating system.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn give_back() {
    // SAFETY: `malloc_trim` releases free memory only; nothing in use moves.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn free_in_allocator() -> usize {
    0
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn give_back() {}
