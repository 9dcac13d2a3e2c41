//! The `purplecov` binary: only dispatches to [`purplecov::cli`].

/// Reading telemetry allocates one string per field value; mimalloc keeps that cheap.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    purplecov::cli::main()
}
