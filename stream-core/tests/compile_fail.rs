//! Handler shapes cloud-stream cannot call are compile errors that say what a handler takes
//! (the expected messages are the `.stderr` files beside each case in `tests/ui/`; regenerate
//! them with `TRYBUILD=overwrite` after a deliberate change).

#[test]
fn unsupported_handler_shapes_explain_themselves() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
