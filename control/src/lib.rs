//! rvs control plane: configuration, the control thread, statistics.
#![forbid(unsafe_code)]
