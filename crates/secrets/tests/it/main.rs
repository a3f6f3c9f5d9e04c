//! One test binary: csp-secrets against Python's `cryptography.fernet`.
//! (Sealed secrets in the stores are tested with csp-store's suite.)

mod interop;
