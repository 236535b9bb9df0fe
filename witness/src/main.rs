//! `sealtrail-witness`: placeholder until the witness daemon (issue 5) lands.
//!
//! It exists so the workspace builds and the binary name is reserved; it does nothing but say so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "sealtrail-witness {}: not implemented yet; see the witness daemon (issue 5)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
