//! The paper's evaluation: FID (pytorch-fid compatible), the statistics behind it, and the
//! per-model results the report shows.

pub mod fid;
pub mod frechet;
pub mod results;
