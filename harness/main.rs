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
    purplecov::cli::main()
}
