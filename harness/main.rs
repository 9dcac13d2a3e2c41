//! The `purplecov` binary: only dispatches to [`purplecov::cli`].

/// Reading telemetry allocates one string per field value; mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's option enum (the same index in its v2 and v3 headers).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Inputs are read and evaluated in parts whose memory is freed and reused part after part; with
    // mimalloc's default 10 ms purge delay, freed pages go back to the OS and fault in again, which
    // cost a fifth of a single-threaded run. Keep them for a second instead.
    // SAFETY: a plain setter of a process-wide option, called before any other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 1000) };
    // No transparent huge pages: the compiled SigmaHQ rule set alone is ~120 MB, and each huge page
    // the kernel hands over is zeroed 2 MB at a time whether or not it is all used; a whole-process
    // A/B (2,407 rules x 100,198 events, 1 thread) measured system time 0.40 s -> 0.13 s, wall 0.92x.
    // SAFETY: prctl(PR_SET_THP_DISABLE) only sets a flag of this process; its result is not needed
    // (without it the run is just slower).
    #[cfg(target_os = "linux")]
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    purplecov::cli::main()
}
