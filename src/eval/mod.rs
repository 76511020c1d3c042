//! The paper's evaluation: FID (pytorch-fid compatible) and the statistics behind it.

pub mod frechet;
