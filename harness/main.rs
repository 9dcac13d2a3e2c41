//! The `purplecov` binary: only dispatches to [`purplecov::cli`].
fn main() -> std::process::ExitCode {
    purplecov::cli::main()
}
