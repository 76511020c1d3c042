//! What people look at: SVG charts now, HTML reports later.

pub mod plot;
