//! kf benchmarks: durable append rate, memory per idle connection
fn main() {}
