//! The `cloud-stream` command line: `validate` and `plan` an application.yaml.
#![forbid(unsafe_code)]

fn main() {}
