//! `sealtrail`: placeholder until the log server (issue 3) lands.
//!
//! It exists so the workspace builds and the binary name is reserved; it does nothing but say so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "sealtrail {}: not implemented yet; see the log server (issue 3)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
