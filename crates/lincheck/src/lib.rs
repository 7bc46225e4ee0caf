//! keel-lincheck (in progress).
