//! Memory the broker has freed, given back to the operating system.
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
