//! The fuzz targets' oracles are kf-core's (`kf_core::testkit::oracles`), shared with the decoders' property
//! tests: what must hold for any input.

pub use kf_core::testkit::oracles::*;
