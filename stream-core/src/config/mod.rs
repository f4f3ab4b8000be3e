//! Configuration: loading `application.yaml`, profiles, placeholders, environment overrides,
//! relaxed key names, validation and typed properties (DESIGN §4).

pub mod props;

pub use props::*;
