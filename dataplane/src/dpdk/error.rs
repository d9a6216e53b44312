//! Errors from the DPDK layer: results instead of return codes.

use std::ffi::CStr;
use std::fmt;

/// What went wrong in a DPDK call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DpdkError {
    /// `Eal::init` was called a second time in this process.
    AlreadyInitialised,
    /// A DPDK call failed; `code` is the (positive) errno it reported.
    Call {
        /// The DPDK function or operation that failed.
        op: &'static str,
        /// The errno value (positive).
        code: i32,
        /// DPDK's text for it (`rte_strerror`).
        message: String,
    },
    /// An argument was refused before reaching DPDK.
    InvalidArgument(String),
}

impl DpdkError {
    /// Builds an error from a failing call's errno (sign ignored).
    pub(crate) fn call(op: &'static str, code: i32) -> Self {
        let code = code.abs();
        // SAFETY: rte_strerror returns a pointer to a static or thread-local
        // NUL-terminated string for any errno value.
        let message = unsafe {
            let p = dpdk_sys::rte_strerror(code);
            if p.is_null() {
                String::from("unknown error")
            } else {
                CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        DpdkError::Call { op, code, message }
    }

    /// Builds an error from `rte_errno` after a call that failed.
    pub(crate) fn from_rte_errno(op: &'static str) -> Self {
        // SAFETY: reads the calling thread's rte_errno; no preconditions.
        let code = unsafe { dpdk_sys::rvs_errno() };
        Self::call(op, code)
    }
}

impl fmt::Display for DpdkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DpdkError::AlreadyInitialised => {
                write!(f, "DPDK EAL is already initialised in this process (it can be initialised only once)")
            }
            DpdkError::Call { op, code, message } => {
                write!(f, "{op} failed: {message} (errno {code})")
            }
            DpdkError::InvalidArgument(m) => write!(f, "invalid argument: {m}"),
        }
    }
}

impl std::error::Error for DpdkError {}
