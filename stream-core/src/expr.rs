//! A small, documented subset of SpEL for routing and partition-key expressions.
