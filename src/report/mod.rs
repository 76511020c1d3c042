//! What people look at: SVG charts and the HTML evaluation report.

pub mod html;
pub mod plot;
