//! `sealtrail-verify`: placeholder until the offline verifier (issue 4) lands.
//!
//! It exists so the workspace builds and the binary name is reserved; it does nothing but say so.

use std::process::ExitCode;

fn main() -> ExitCode {
    eprintln!(
        "sealtrail-verify {}: not implemented yet; see the offline verifier (issue 4)",
        env!("CARGO_PKG_VERSION")
    );
    ExitCode::from(2)
}
